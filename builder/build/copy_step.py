"""A COPY or ADD step: its cache description (source checksums) and its action."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any

from builder.dockerfile import instructions as ins

from .context import Context

if TYPE_CHECKING:
    from builder.dockerfile.stages import Stage

    from .executor import Executor, StageState


def absolute_dest(dest: str, workdir: str) -> str:
    """The destination as an absolute container path, keeping a trailing ``/``; cleaned
    lexically (``..`` applied before any symlink is followed), as docker does."""
    slash = dest.endswith("/") or dest in (".", "")
    joined = os.path.normpath(os.path.join(workdir or "/", dest))
    if joined.startswith("//"):
        joined = joined[1:]
    return joined + "/" if slash and not joined.endswith("/") else joined


def _is_url(src: str) -> bool:
    return src.startswith(("http://", "https://"))


class CopyStep:
    """Resolves sources when created (so missing ones fail before any mount)."""

    def __init__(self, executor: "Executor", stage: "Stage", state: "StageState", inst: ins.Copy | ins.Add):
        self.executor = executor
        self.stage = stage
        self.inst = inst
        self.workdir = state.run_config.get("WorkingDir") or "/"
        self.shell = state.shell
        self.kind = ""  # of a --from source, for the history: set by apply()
        self.is_add = isinstance(inst, ins.Add)
        self.from_ = inst.from_ if isinstance(inst, ins.Copy) else ""
        self.remote: list[tuple[str, bytes]] = []
        self.parents = bool(getattr(inst, "parents", False))
        self.exclude = list(inst.exclude)
        self.urls = [s for s in inst.sources if self.is_add and _is_url(s)]
        local = [s for s in inst.sources if s not in self.urls]
        self.count = len(inst.sources) + len(inst.contents)
        if self.from_:
            self.source_key: str | None = executor.source_key(self.from_, inst, stage)
            self.resolved: list[tuple[str, Any]] = [(s, None) for s in local]  # (source, its paths; None: --from)
            self.checksums: list[Any] = local
        else:
            ctx = _excluding(executor.opts.context, self.exclude)
            self.context = ctx
            self.resolved = _resolve_all(ctx, local, self.count)
            self.source_key = None
            self.checksums = [[s, [[rel, ctx.checksum(rel)] for rel in rels]] for s, rels in self.resolved]
            self.count = sum(len(r) for _, r in self.resolved) + len(self.urls) + len(inst.contents)
        dest = absolute_dest(inst.dest, self.workdir)
        if self.count > 1 and not dest.endswith("/"):
            raise inst.error("When using COPY with more than one source file, the destination must be a "
                             "directory and end with a /")
        self.dest = dest
        if self.urls:
            from .copy import read_url  # noqa: PLC0415
            for url in self.urls:
                self.remote.append(read_url(url, getattr(inst, "checksum", "") or None))

    def description(self) -> list[Any]:
        """What the cache key covers."""
        extra = [["exclude", self.exclude]] if self.exclude else []
        extra += [["parents"]] if self.parents else []
        return [self.inst.name, self.source_key, self.checksums, self.dest, self.workdir, self.inst.chown,
                self.inst.chmod, [[c.path, c.data] for c in self.inst.contents],
                [[n, hashlib.sha256(d).hexdigest()] for n, d in self.remote]] + extra

    @property
    def link(self) -> bool:
        """``--link``: the layer is made on an empty tree (independent of what is below), unless a
        ``--chown`` name must be looked up in the stage's /etc/passwd."""
        chown = self.inst.chown
        numeric = not chown or all(part.isdigit() for part in chown.split(":"))
        return bool(getattr(self.inst, "link", False)) and numeric

    def created_by(self) -> str:
        """docker's text: ``<shell> #(nop) COPY [--chown=X]<kind>:<hash> in <dest as written> ``.

        The kind is ``multi`` for several sources (wildcard matches count), else ``dir``
        or ``file``; a ``--from`` source's is known once :meth:`apply` has run.
        """
        from .metadata import nop_created_by  # noqa: PLC0415

        digest = hashlib.sha256(repr(self.description()).encode()).hexdigest()
        if self.from_ and not self.kind:  # a cache record older than the kinds: not looked up
            self.kind = "multi" if len(self.resolved) > 1 else "file"
        kind = self.kind or _source_kind(self.executor.opts.context, [r for _, rels in self.resolved for r in rels],
                                         len(self.urls) + len(self.inst.contents))
        if kind == "file" and self.urls:
            kind = ""  # docker writes a lone URL's hash bare
        chown = f"--chown={self.inst.chown}" if self.inst.chown else ""
        source = f"{kind}:{digest}" if kind else digest
        return nop_created_by(self.shell, f"{self.inst.name} {chown}{source} in {self.inst.dest} ",
                              metadata=False)

    def apply(self, merged: str, upper: str) -> None:
        """Copy into the mounted rootfs ``merged``."""
        from .copy import CopyError, CopyRequest, resolve_owner, run_copy  # noqa: PLC0415

        inst = self.inst
        owner = resolve_owner(inst.chown, merged) if inst.chown else None if self.from_ else (0, 0)
        chmod = _parse_chmod(inst.chmod, inst) if inst.chmod else None
        if self.from_:
            root, _ = self.executor.source_root(self.from_, inst, self.stage)
            tree = _excluding(Context(root, stage=True), self.exclude)
            sources = [rel for _, rels in _resolve_all(tree, [s for s, _ in self.resolved], self.count)
                       for rel in rels]
            self.kind = _source_kind(tree, sources, len(self.remote) + len(inst.contents))
        else:
            tree = self.context
            sources = [rel for _, rels in self.resolved for rel in rels]
        req = CopyRequest(tree, sources, self.dest, self.workdir, owner, chmod, extract=self.is_add and not self.from_,
                          multiple=self.count > 1, remote=list(self.remote))
        if inst.contents:
            for content in inst.contents:
                req.remote.append((content.path, content.data.encode()))
            if chmod is None:
                req.chmod = 0o644
        try:
            if self.parents:  # each source keeps its path: DEST/<path relative to the source root>
                for rel in sources:
                    parent = rel if os.path.isdir(tree.host_path(rel)) else os.path.dirname(rel)
                    sub = CopyRequest(tree, [rel], self.dest.rstrip("/") + "/" + (parent + "/" if parent else ""),
                                      self.workdir, owner, chmod, extract=req.extract, multiple=True)
                    run_copy(merged, sub)
                req.sources = []
                if req.remote:
                    run_copy(merged, req)
            else:
                run_copy(merged, req)
            if not any(os.scandir(upper)):
                _touch_dest(merged, self.dest)
        except CopyError as err:
            raise inst.error(str(err)) from None
        except OSError as err:
            raise inst.error(f"{inst.name} failed: {err}") from None


def _excluding(tree: Context, patterns: list[str]) -> Context:
    """``tree`` with ``--exclude`` patterns (.dockerignore syntax) applied on top of its own
    ignore rules; a pattern matches a path relative to the context root or to a directory
    being copied, as BuildKit matches it against the copied source."""
    if not patterns:
        return tree
    from builder.dockerignore import DockerIgnore  # noqa: PLC0415

    matcher = DockerIgnore(patterns)
    base = tree.ignored

    def ignored(rel: str, is_dir: bool) -> bool:
        if base(rel, is_dir) or matcher.excluded(rel, is_dir):
            return True
        parts = rel.split("/")
        return any(matcher.excluded("/".join(parts[i:]), is_dir) for i in range(1, len(parts)))

    return Context(tree.root, ignored, tree.hashes, stage=tree.stage)


def _source_kind(tree: Context, rels: list[str], others: int) -> str:
    """docker's history word for what a COPY copies: ``multi``, ``dir`` or ``file``."""
    if len(rels) + others > 1:
        return "multi"
    return "dir" if len(rels) == 1 and os.path.isdir(tree.host_path(rels[0])) else "file"


def _resolve_all(tree: Context, sources: list[str], count: int) -> list[tuple[str, list[str]]]:
    """Each source with what it matches in ``tree``; a wildcard may match nothing as long as
    the instruction (``count`` sources and contents in all) gets at least one file."""
    resolved = [(s, tree.resolve(s, allow_empty=count > 1)) for s in sources]
    if count == len(sources) and sources and not any(rels for _, rels in resolved):
        tree.resolve(sources[-1])  # raises docker's "no source files were specified"
    return resolved


def _touch_dest(merged: str, dest: str) -> None:
    """A COPY that wrote nothing (an empty directory into an existing one) still makes a
    layer in docker, holding the destination directory: copy it up by a no-op chown."""
    from base.safepath import resolve  # noqa: PLC0415

    host = resolve(merged, dest)
    try:
        st = os.lstat(host)
    except OSError:
        return
    os.lchown(host, st.st_uid, st.st_gid)


def _parse_chmod(text: str, inst: ins.Instruction) -> int:
    try:
        value = int(text, 8)
    except ValueError:
        raise inst.error(f"invalid chmod parameter {text!r}: use an octal mode like 0755") from None
    if value > 0o7777:
        raise inst.error(f"invalid chmod parameter {text!r}")
    return value
