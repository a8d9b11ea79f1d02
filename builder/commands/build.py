"""``pybuild build [options] CONTEXT``: a Dockerfile and a context to an image in the store.

CONTEXT is a directory or ``-`` (a Dockerfile on stdin, no context files).  Imports
stay light until the build starts; the cached path never loads the HTTP client,
the progress renderer of a terminal UI or the compressors.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from base.removal import remove_tree


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("context", metavar="CONTEXT",
                        help="context: a directory, a tar(.gz|.bz2|.xz|.zst) file, an http(s) or git URL "
                             "(URL#REF:SUBDIR), or '-' for a tar or a Dockerfile on stdin")
    parser.add_argument("-t", "--tag", action="append", default=[], metavar="NAME[:TAG]", help="name the image (repeatable)")
    parser.add_argument("-f", "--file", default=None, metavar="FILE", help="Dockerfile (default: CONTEXT/Dockerfile; '-' for stdin)")
    parser.add_argument("--build-arg", action="append", default=[], metavar="K[=V]", help="set a build arg (repeatable)")
    parser.add_argument("--target", default=None, metavar="STAGE", help="build up to this stage")
    parser.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    parser.add_argument("--network", choices=["host", "none", "default"], default="host", help="network for RUN (default: host)")
    parser.add_argument("--label", action="append", default=[], metavar="K=V", help="add a label to the image (repeatable)")
    parser.add_argument("--secret", action="append", default=[], metavar="id=ID,src=FILE", help="expose a secret file to RUN --mount=type=secret")
    parser.add_argument("--compression", choices=["gzip", "zstd", "none"], default=None, help="layer compression (default gzip)")
    parser.add_argument("--pull", action="store_const", const="true", default="false",
                        help="always look for a newer base image in its registry (--pull=false: use the store's)")
    parser.add_argument("--pull-value", dest="pull", help=argparse.SUPPRESS)
    parser.add_argument("-o", "--output", action="append", default=[], metavar="SPEC",
                        help="type=image|registry|local,dest=DIR|tar,dest=FILE|oci,dest=FILE|docker,dest=FILE ('-' = stdout)")
    parser.add_argument("--build-context", action="append", default=[], metavar="NAME=VALUE",
                        help="a named context for COPY --from/FROM: DIR, docker-image://REF or oci-layout://DIR[:TAG]")
    parser.add_argument("--ssh", action="append", default=[], metavar="default|ID=SOCKET",
                        help="forward an SSH agent socket to RUN --mount=type=ssh (default: $SSH_AUTH_SOCK)")
    parser.add_argument("--metadata-file", default=None, metavar="FILE", help="write the build result's metadata (JSON)")
    parser.add_argument("--cache-from", action="append", default=[], metavar="SPEC",
                        help="import a build cache: type=registry,ref=REF | type=local,src=DIR | IMAGE (repeatable)")
    parser.add_argument("--cache-to", action="append", default=[], metavar="SPEC",
                        help="export the build cache: type=registry,ref=REF[,mode=min|max] | type=local,dest=DIR | type=inline")
    parser.add_argument("--progress", choices=["auto", "plain", "tty"], default="auto", help="progress output")
    parser.add_argument("--iidfile", default=None, metavar="FILE", help="write the image ID to FILE")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    parser.add_argument("--push", action="store_true", help="push every -t name to its registry after the build")
    parser.add_argument("--insecure", action="store_true", help="with --push: allow plain HTTP registries")
    parser.add_argument("--sbom", action="store_true",
                        help="attach an SPDX SBOM of the image as an in-toto attestation (the tag names an index)")
    parser.add_argument("--provenance", action="store_true",
                        help="attach SLSA provenance (Dockerfile and base image digests, args with secrets redacted)")
    parser.add_argument("--sign", default=None, metavar="KEY",
                        help="with --push: sign each pushed image with this private key (cosign's format)")
    parser.add_argument("--platform", default=None, metavar="OS/ARCH[/VARIANT]",
                        help="target platform (default: the host's); foreign RUN steps run under qemu emulation")


def normalize_args(argv: list[str]) -> list[str]:
    """``--pull=VALUE`` as docker writes it (a bare ``--pull`` takes no value, so the context
    after it stays the context)."""
    return [part for item in argv for part in
            (["--pull-value", item.split("=", 1)[1]] if item.startswith("--pull=") else [item])]


def _build_args(values: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in values:
        key, sep, value = item.partition("=")
        out[key] = value if sep else os.environ.get(key)
    return out


def _pairs(values: list[str], what: str) -> dict[str, str]:
    from registry.errors import PybuildError

    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise PybuildError(f"invalid {what} {item!r}: use KEY=VALUE")
        out[key] = value
    return out


def _cache_specs(args) -> tuple[list, list, str]:
    """``--cache-from``/``--cache-to`` parsed; the layer compression (a cache's ``compression=``
    sets it, so the image and its cache share one blob per layer)."""
    if not (args.cache_from or args.cache_to):
        return [], [], args.compression or "gzip"
    from builder.build.cache_remote import parse_spec
    from registry.errors import PybuildError

    cache_from = [parse_spec(v, export=False) for v in args.cache_from]
    cache_to = [parse_spec(v, export=True) for v in args.cache_to]
    wanted = {{"uncompressed": "none"}.get(s.compression, s.compression) for s in cache_to if s.compression}
    if args.compression and wanted - {args.compression}:
        raise PybuildError(f"--compression {args.compression} conflicts with --cache-to compression="
                           f"{sorted(wanted)[0]}: the cache reuses the image's layers")
    if len(wanted) > 1:
        raise PybuildError("--cache-to: give every cache the same compression")
    return cache_from, cache_to, args.compression or (wanted.pop() if wanted else "gzip")


def _secrets(values: list[str]) -> dict[str, str]:
    from registry.errors import PybuildError

    out = {}
    for item in values:
        fields = dict(part.partition("=")[::2] for part in item.split(","))
        sid, src = fields.get("id"), fields.get("src") or fields.get("source")
        if not sid or not src:
            raise PybuildError(f"invalid --secret {item!r}: use id=ID,src=FILE")
        if not os.path.isfile(src):
            raise PybuildError(f"--secret {sid}: {src} is not a readable file")
        out[sid] = os.path.abspath(src)
    return out


def _read_dockerfile(args) -> tuple[str, str, str]:
    """(context dir or '', Dockerfile path for messages, Dockerfile text)."""
    from registry.errors import PybuildError

    if args.context == "-" or not os.path.isdir(args.context):
        from builder.build.contexts import materialize
        context, text, args.context_scratch = materialize(args.context, args.root, sys.stdin.buffer)
        if text is not None:  # a Dockerfile, not an archive: no context files
            return "", "Dockerfile", text.decode("utf-8", "surrogateescape")
    else:
        context = os.path.abspath(args.context)
    if args.file == "-":
        return context, "Dockerfile", sys.stdin.read()
    path = args.file or os.path.join(context, "Dockerfile")
    if args.file and getattr(args, "context_scratch", None):  # -f names a file inside the archive/repository
        from base import safepath
        path = safepath.resolve(context, args.file)
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            return context, path, fh.read()
    except OSError as err:
        raise PybuildError(f"cannot read Dockerfile {path}: {err.strerror}") from None


def automatic_args(target) -> dict[str, str]:
    """BuildKit's platform args for a build on this host for ``target`` (a Platform)."""
    from registry.platform import host

    out = {f"BUILD{k}": v for k, v in host().build_args.items()}
    out.update({f"TARGET{k}": v for k, v in target.build_args.items()})
    return out


def run(args: argparse.Namespace) -> int:
    from builder.build import named_contexts
    from builder.build.context import Context, HashCache
    from builder.build.executor import BuildOptions, Executor
    from builder.build.progress import Progress
    from builder.dockerfile.stages import plan
    from registry.errors import PybuildError
    from registry.platform import host, parse_list
    from registry.reference import parse as parse_reference

    outputs = []
    if args.output:
        from builder.build.outputs import parse_output

        outputs = [parse_output(v) for v in args.output]
    args.tag += [n for o in outputs for n in o.name.split(",") if n and n not in args.tag]
    args.push = args.push or any(o.push for o in outputs)
    pull = _boolean(args.pull, "--pull")
    for tag in args.tag:
        parse_reference(tag)  # a bad name fails now, not after the build
    signing_key = _signing_key(args)
    targets = parse_list(args.platform) if args.platform else [None]
    if len(targets) > 1 and (args.sbom or args.provenance):
        raise PybuildError("--sbom and --provenance are not supported with several --platform values yet; "
                           "build one platform at a time")
    context_dir, dockerfile, text = _read_dockerfile(args)
    display = os.path.basename(dockerfile) if not args.file else args.file
    plans = [plan(text, _build_args(args.build_arg), args.target, path=display,
                  automatic=automatic_args(target or host())) for target in targets]
    build_plan = plans[0]
    progress = Progress(args.progress, quiet=args.quiet)
    for warning in build_plan.warnings:
        progress.message(f"[Warning] {warning}")
    if context_dir:
        import hashlib

        from builder import dockerignore

        ignore = dockerignore.load(context_dir, dockerfile if args.file not in (None, "-") else None)
        hashes = HashCache(None if getattr(args, "context_scratch", None) else  # an unpacked archive: new each time
                           os.path.join(args.root, "cache", "hashes",
                                        hashlib.sha256(context_dir.encode()).hexdigest()[:32]))
        context = Context(context_dir, ignore.excluded if ignore else None, hashes)
    else:
        context = Context(_empty_dir(args.root))
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    cache_from, cache_to, compression = _cache_specs(args)
    labels, secrets = _pairs(args.label, "--label"), _secrets(args.secret)
    contexts, ssh = named_contexts.parse(args.build_context), _ssh(args.ssh)
    several = len(targets) > 1  # an index over one image per platform, named by the tags
    if several and (cache_from or cache_to):
        raise PybuildError("--cache-from and --cache-to are not supported with several --platform values yet; "
                           "build one platform at a time")

    def options(target) -> BuildOptions:
        return BuildOptions(root=args.root, context=context, tags=[] if several else list(args.tag),
                            no_cache=args.no_cache, network="host" if args.network == "default" else args.network,
                            labels=labels, secrets=secrets, compression=compression,
                            source_date_epoch=int(epoch) if epoch else None, platform=target,
                            keep_untagged=not several, cache_from=cache_from, cache_to=cache_to,
                            insecure=args.insecure, pull=pull, named_contexts=contexts, ssh=ssh)
    executors = [Executor(p, options(target), progress) for p, target in zip(plans, targets)]
    signal.signal(signal.SIGTERM, _interrupt)  # a kill cleans up like Ctrl-C
    started = time.time()
    try:
        if several:
            from builder.build.multi import build_index
            from registry.store import Store

            result = build_index(executors, Store(args.root), list(args.tag))
        else:
            result = executors[0].build()
    finally:
        context.hashes.save()
        if getattr(args, "context_scratch", None):
            remove_tree(args.context_scratch, ignore_errors=True)
    if args.sbom or args.provenance:
        _attest(args, result, executors[0], started, display, text)
    unused = build_plan.unused_build_args_warning()
    if unused:
        progress.message(unused)
    if args.iidfile:
        with open(args.iidfile, "w") as fh:
            fh.write(result.id)
    if outputs:
        from builder.build.outputs import write_output
        from registry.store import Store

        store = Store(args.root)
        assert result.descriptor is not None  # every build stores its image
        for output in outputs:
            write_output(output, store, store.image_at(result.descriptor), args.tag)
    if args.push:
        _push(args, progress, signing_key)
    if args.metadata_file:
        _write_metadata(args.metadata_file, result, args.tag)
    if any(o.dest == "-" for o in outputs):
        progress.message(f"writing image {result.id} done")  # stdout carries the export
    elif args.quiet:
        print(result.id)
    else:
        progress.message(f"writing image {result.id} done")
        for tag in args.tag:
            progress.message(f"naming to {tag} done")
        print(result.id)
    return 0


def _ssh(values: list[str]) -> dict[str, str]:
    """``--ssh default`` ($SSH_AUTH_SOCK) or ``--ssh ID=SOCKET``: agent sockets by id."""
    import stat

    from registry.errors import PybuildError

    out = {}
    for item in values:
        sid, sep, path = item.partition("=")
        if not sep:
            path = os.environ.get("SSH_AUTH_SOCK", "")
            if not path:
                raise PybuildError(f"--ssh {sid}: SSH_AUTH_SOCK is not set; start an agent (eval $(ssh-agent)) "
                                   f"or give --ssh {sid}=SOCKET")
        path = path.split(",")[0]
        try:
            is_socket = stat.S_ISSOCK(os.stat(path).st_mode)
        except OSError as err:
            raise PybuildError(f"--ssh {sid}: {path}: {err.strerror}") from None
        if not is_socket:
            raise PybuildError(f"--ssh {sid}: {path} is not an agent socket (key files are not loaded: "
                               f"run ssh-add KEY in an agent and pass its socket)")
        out[sid] = os.path.abspath(path)
    return out


def _boolean(value: str, flag: str) -> bool:
    from registry.errors import PybuildError

    text = value.lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise PybuildError(f"invalid {flag}={value!r}: use true or false")


def _write_metadata(path: str, result, tags: list[str]) -> None:
    """buildx's ``--metadata-file`` keys for an image build."""
    import json

    desc = result.descriptor
    doc = {"containerimage.digest": desc.digest, "containerimage.config.digest": result.id,
           "containerimage.descriptor": {"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size}}
    if tags:
        doc["image.name"] = ",".join(tags)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=2)
    os.replace(tmp, path)


def _attest(args, result, executor, started: float, dockerfile: str, text: str) -> None:
    """Put the SBOM and/or provenance beside the image: the tags then name an index of both."""
    from registry import attestation
    from registry.image import StoreSource
    from registry.store import Store, host_platform

    store = Store(args.root)
    image = store.image_at(result.descriptor)
    name = args.tag[0] if args.tag else result.id
    subject = attestation.subject_name(name, {k: image.config.get(k) for k in ("os", "architecture", "variant")})
    statements = []
    if args.sbom:
        from registry.sbom.scan import image_sbom

        sbom = image_sbom(StoreSource(store, image), name)
        statements.append(attestation.statement(subject, result.descriptor.digest, attestation.SPDX_PREDICATE, sbom))
    if args.provenance:
        from builder.build.provenance import predicate

        slsa = predicate(dockerfile_path=dockerfile, dockerfile_text=text, build_args=_build_args(args.build_arg),
                         target=args.target, secret_ids=list(_secrets(args.secret)), labels=_pairs(args.label, "--label"),
                         base_images=executor.base_images, started=started, finished=time.time(),
                         platform=host_platform())
        statements.append(attestation.statement(subject, result.descriptor.digest, attestation.SLSA_PROVENANCE_V1,
                                                slsa))
    with store.transaction():
        index = attestation.attach(store, result.descriptor, statements)
        for tag in args.tag:
            store.tag(tag, index)
        if not args.tag:  # the index replaces the image's <none> entry (it keeps the image reachable)
            if not any(desc.digest == result.descriptor.digest for _, desc in store.tags()):
                store.remove_manifest(result.descriptor.digest)
            store.keep(index)


def _signing_key(args):
    """The private key of ``--sign``, read (and its passphrase asked) before the build starts."""
    from registry.errors import PybuildError

    if not args.sign:
        return None
    if not args.push:
        raise PybuildError("--sign signs what --push pushes; add --push")
    from registry.signing.keys import load_private

    return load_private(args.sign)


def _push(args, progress, signing_key=None) -> None:
    from registry.errors import PybuildError
    from registry.remote.push import push_image
    from registry.store import Store

    if not args.tag:
        raise PybuildError("--push needs at least one -t NAME to push to")
    store = Store(args.root)
    for tag in args.tag:
        digest = push_image(store, tag, insecure=args.insecure)
        progress.message(f"pushed {tag}@{digest}")
        if signing_key is not None:
            from registry.signing.cosign import signature_tag
            from registry.signing.remote import sign_image

            sign_image(tag, signing_key, insecure=args.insecure, digest=digest)
            progress.message(f"signed {tag}@{digest} ({signature_tag(digest)})")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _empty_dir(root: str) -> str:
    path = os.path.join(root, "tmp", "empty-context")
    os.makedirs(path, exist_ok=True)
    return path
