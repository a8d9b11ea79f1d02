"""Differential harness: build a case with docker (legacy builder) and with pybuild, compare.

A case is a directory ``cases/<name>/`` holding a ``Dockerfile`` and its context files,
and optionally ``args.json`` (``{"build_args": {...}, "target": "..."}``), ``prepare.sh``
(run in a scratch copy of the case to make what git cannot hold: symlinks, hard links,
modes, tars) and ``expect-error`` (docker must reject the case; the file holds the
Dockerfile line pybuild's error must name).  A case with a ``parent/`` directory is a
two-build case: ``parent/`` (a Dockerfile and its context) is built first and tagged
``diffparent-<case>``, which the case's Dockerfile uses (ONBUILD triggers, FROM an image
the same builder made).  A case with an ``http/`` directory has it served at
``http://127.0.0.1:38123/`` while both builders build (ADD of URLs).  Those names, the
image tags ``diffbase``/``diffparent-<case>`` and that port are fixed because the cases'
Dockerfiles name them: two live runs of this suite against one dockerd at once collide
(each case's own result tag carries the pid, so at least those do not).

Both builders start from the same base rootfs (``base_rootfs_tar``): busybox with its
applets as symlinks, /etc/passwd and /etc/group, imported as ``diffbase``.  A result is
``{"ok", "error", "fs", "config", "history"}``; docker's results are cached by the case's
content hash under ``.docker-results/`` so CI rebuilds only what changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases"
RESULTS = HERE / ".docker-results"
BASE_NAME = "diffbase"
BUSYBOX = "/bin/busybox"
EPOCH = 1600000000
CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes",
               "Labels", "StopSignal", "Healthcheck", "Shell", "OnBuild")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
svc:x:1001:1002:svc:/home/svc:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
staff:x:50:app
nogroup:x:65534:
app:x:1000:
svcgrp:x:1002:
"""


HTTP_PORT = 38123


@contextlib.contextmanager
def served(ctx: Path):
    """Serve a case's ``http/`` directory (moved beside the context) on ``HTTP_PORT``."""
    directory = ctx.parent / "http"
    if not directory.is_dir():
        yield
        return
    import functools  # noqa: PLC0415
    import http.server  # noqa: PLC0415
    import threading  # noqa: PLC0415

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", HTTP_PORT), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def parent_tag(case_name: str) -> str:
    """The tag a two-build case's ``parent/`` image gets (in both builders)."""
    return f"diffparent-{case_name}"


def case_names() -> list[str]:
    """Every case directory, sorted."""
    return sorted(p.name for p in CASES.iterdir() if (p / "Dockerfile").is_file())


# --- the shared base -----------------------------------------------------------------

def base_rootfs_tar(dest: Path) -> str:
    """Write the busybox base rootfs tar to ``dest`` (byte-stable); return its sha256."""
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    applets = subprocess.run([BUSYBOX, "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()
    dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "tmp", "root", "home",
            "home/app", "var", "var/log", "dev", "proc", "sys"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, type_, mode, data=b"", linkname="", uid=0, gid=0):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.uid, info.gid = type_, mode, EPOCH, uid, gid
            info.linkname, info.size = linkname, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
        for d in sorted(dirs):
            mode = 0o1777 if d == "tmp" else 0o700 if d == "root" else 0o755
            uid = 1000 if d == "home/app" else 0
            add(d, tarfile.DIRTYPE, mode, uid=uid, gid=uid)
        add("bin/busybox", tarfile.REGTYPE, 0o755, busybox)
        add("etc/passwd", tarfile.REGTYPE, 0o644, PASSWD.encode())
        add("etc/group", tarfile.REGTYPE, 0o644, GROUP.encode())
        for path in sorted(set(applets) - {"bin/busybox"}):
            add(path, tarfile.SYMTYPE, 0o777, linkname="/bin/busybox")
    data = buf.getvalue()
    dest.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def docker_image_exists(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True).returncode == 0


def ensure_docker_base(tar_path: Path, tar_sha: str) -> None:
    """Import the base into docker as ``diffbase`` unless that exact rootfs is there."""
    pinned = f"pybuild-diffbase:{tar_sha[:16]}"
    if not docker_image_exists(pinned):
        subprocess.run(["docker", "import", str(tar_path), pinned], check=True, capture_output=True)
    subprocess.run(["docker", "tag", pinned, BASE_NAME], check=True)


# --- cases ---------------------------------------------------------------------------

def case_options(case: Path) -> dict:
    """``args.json`` of a case (build_args, target), or empty."""
    path = case / "args.json"
    return json.loads(path.read_text()) if path.exists() else {}


def expected_error_line(case: Path) -> int | None:
    """The Dockerfile line an ``expect-error`` case must name, else None."""
    path = case / "expect-error"
    if not path.exists():
        return None
    lines = path.read_text().strip().splitlines()
    return int(lines[0]) if lines and lines[0].strip() else 0


def expected_error_text(case: Path) -> str:
    """The message both builders' errors must contain: the second line of ``expect-error``."""
    lines = (case / "expect-error").read_text().strip().splitlines()
    return lines[1].strip() if len(lines) > 1 else ""


def case_key(case: Path, base_sha: str) -> str:
    """Content hash of a case (every file's path, exec bit and bytes) plus the base."""
    h = hashlib.sha256(base_sha.encode())
    for path in sorted(case.rglob("*")):
        rel = path.relative_to(case).as_posix()
        if path.is_symlink():
            h.update(f"L {rel} {os.readlink(path)}\n".encode())
        elif path.is_file():
            h.update(f"F {rel} {os.access(path, os.X_OK)}\n".encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
        else:
            h.update(f"D {rel}\n".encode())
    return h.hexdigest()


def prepare_context(case: Path, dest: Path) -> Path:
    """Copy a case to ``dest`` with normalised modes, then run its ``prepare.sh`` there."""
    shutil.copytree(case, dest, symlinks=True)
    for root, _dirs, files in os.walk(dest):
        os.chmod(root, 0o755)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.access(path, os.X_OK) else 0o644)
    if (dest / "prepare.sh").exists():
        subprocess.run(["sh", "-e", "prepare.sh"], cwd=dest, check=True)
        (dest / "prepare.sh").unlink()
    if (dest / "parent").is_dir():  # a two-build case: the parent's context sits beside
        (dest / "parent").rename(parent_context(dest))
    if (dest / "http").is_dir():  # served while building, not part of the context
        (dest / "http").rename(dest.parent / "http")
    return dest


def parent_context(ctx: Path) -> Path:
    """Where :func:`prepare_context` puts a two-build case's ``parent/`` context."""
    return ctx.parent / "parent-ctx"


# --- filesystem model ----------------------------------------------------------------

def _norm(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    name = name.lstrip("/").rstrip("/")
    return "" if name == "." else name


def apply_layers(layers) -> dict:
    """Apply uncompressed layer tar streams in order; return ``{path: entry}``.

    An entry holds type, mode, uid, gid and sha256 / target / links.  Whiteouts and
    opaque markers remove what lower layers had.
    """
    fs: dict[str, dict] = {}
    inodes: dict[str, object] = {}
    for stream in layers:
        entries, whiteouts, opaque = [], [], []
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for m in tar:
                name = _norm(m.name)
                base = name.rsplit("/", 1)[-1]
                parent = name.rsplit("/", 1)[0] if "/" in name else ""
                if base == ".wh..wh..opq":
                    opaque.append(parent)
                    continue
                if base.startswith(".wh."):
                    whiteouts.append((parent + "/" if parent else "") + base[4:])
                    continue
                entry = {"mode": m.mode & 0o7777, "uid": m.uid, "gid": m.gid}
                if m.isreg():
                    entry["type"] = "file"
                    entry["sha256"] = hashlib.sha256(tar.extractfile(m).read()).hexdigest()
                elif m.isdir():
                    entry["type"] = "dir"
                elif m.issym():
                    entry["type"], entry["target"] = "symlink", m.linkname
                elif m.islnk():
                    entry["type"], entry["link"] = "hardlink", _norm(m.linkname)
                elif m.ischr() or m.isblk():
                    entry["type"] = f"{'chr' if m.ischr() else 'blk'}:{m.devmajor},{m.devminor}"
                elif m.isfifo():
                    entry["type"] = "fifo"
                entries.append((name, entry))
        for path in whiteouts:
            _remove(fs, inodes, path)
        for d in opaque:
            for p in [p for p in fs if p.startswith(d + "/")]:
                _remove(fs, inodes, p)
        for name, entry in entries:
            if name == "":
                continue
            old = fs.get(name)
            if old is not None and not (old["type"] == "dir" and entry["type"] == "dir"):
                _remove(fs, inodes, name)
            if entry["type"] == "hardlink":
                target = entry.pop("link")
                src = fs.get(target)
                if src is None:
                    raise ValueError(f"hard link {name} -> missing {target}")
                entry = dict(src)
                inodes[name] = inodes[target]
            elif entry["type"] == "file":
                inodes[name] = object()
            fs[name] = entry
    groups: dict[int, list[str]] = {}
    for path, ino in inodes.items():
        groups.setdefault(id(ino), []).append(path)
    for paths in groups.values():
        if len(paths) > 1:
            for p in paths:
                fs[p] = dict(fs[p], links=sorted(paths))
    return fs


def _remove(fs: dict, inodes: dict, path: str) -> None:
    for p in [p for p in fs if p == path or p.startswith(path + "/")]:
        del fs[p]
        inodes.pop(p, None)


def summarize(config: dict, layers) -> dict:
    """The comparable part of an image: fs, selected config fields, empty_layer flags
    and the history's ``created_by`` texts (see :func:`created_by_texts`)."""
    cfg = config.get("config") or {}
    picked = {}
    for key in CONFIG_KEYS:
        value = cfg.get(key)
        picked[key] = value if value not in ([], {}, "", None) else None
    history = [bool(h.get("empty_layer")) for h in config.get("history") or []]
    return {"ok": True, "fs": apply_layers(layers), "config": picked, "history": history,
            "created_by": created_by_texts(config.get("history") or [])}


_SOURCE_HASH = re.compile(r"((?:file|dir|multi):)?[0-9a-f]{64}(?= in )")


def _hashes_by_kind(text: str) -> str:
    return _SOURCE_HASH.sub(lambda m: (m.group(1) or "") + "*", text)


def created_by_texts(history: list[dict]) -> list[str]:
    """``created_by`` of each history entry after the imported base, with COPY/ADD source
    hashes (``file:<sha256>``, or a bare hash for a URL; each builder hashes differently)
    replaced by ``<kind>:*``."""
    return [_hashes_by_kind(h.get("created_by") or "")
            for h in history if not (h.get("comment") or "").startswith("Imported from")]


# --- docker --------------------------------------------------------------------------

def docker_build(ctx: Path, opts: dict, tag: str, parent: str | None = None) -> dict:
    """Build ``ctx`` with the legacy builder; summarise the image or return the error.

    ``parent``: the tag to build a two-build case's parent context under first.
    """
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    if parent and parent_context(ctx).is_dir():
        subprocess.run(["docker", "build", "-q", "-t", parent, str(parent_context(ctx))],
                       check=True, capture_output=True, env=env)
    try:
        with served(ctx):
            return _docker_build(ctx, opts, tag, env)
    finally:
        if parent:
            subprocess.run(["docker", "rmi", "-f", parent], capture_output=True)


def _docker_build(ctx: Path, opts: dict, tag: str, env: dict) -> dict:
    cmd = ["docker", "build", "-q", "-t", tag, "-f", str(ctx / "Dockerfile")]
    for k, v in (opts.get("build_args") or {}).items():
        cmd += ["--build-arg", f"{k}={v}" if v is not None else k]
    if opts.get("target"):
        cmd += ["--target", opts["target"]]
    proc = subprocess.run(cmd + [str(ctx)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"ok": False, "error": (proc.stderr or proc.stdout).strip()[-2000:]}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "image.tar"
            subprocess.run(["docker", "save", "-o", str(archive), tag], check=True)
            return _summarize_docker_archive(archive)
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def _summarize_docker_archive(archive: Path) -> dict:
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        config = json.load(tar.extractfile(manifest["Config"]))
        streams = (tar.extractfile(layer) for layer in manifest["Layers"])
        return summarize(config, streams)


def base_fs(tar_path: Path) -> dict:
    """The base rootfs as a filesystem model (what cached results are stored relative to)."""
    with open(tar_path, "rb") as fh:
        return apply_layers([fh])


def _delta(fs: dict, base: dict) -> dict:
    return {"changed": {p: e for p, e in fs.items() if base.get(p) != e},
            "removed": sorted(p for p in base if p not in fs)}


def _undelta(delta: dict, base: dict) -> dict:
    fs = {p: e for p, e in base.items() if p not in set(delta["removed"])}
    fs.update(delta["changed"])
    return fs


def docker_result(case: Path, base_tar: Path, base_sha: str) -> dict:
    """Docker's result for a case, from the cache or by building it.

    Cached files hold the filesystem as a difference from the base, to stay small.
    With ``PYBUILD_DIFF_LIVE=1`` (set by CI) the cache is not read: docker builds
    every case in the run, and the fresh result is written back.
    """
    key = case_key(case, base_sha)
    cached = RESULTS / f"{case.name}.json"
    base = base_fs(base_tar)
    if cached.exists() and not os.environ.get("PYBUILD_DIFF_LIVE"):
        data = json.loads(cached.read_text())
        if data.get("key") == key:
            result = data["result"]
            if "fs_delta" in result:
                result["fs"] = _undelta(result.pop("fs_delta"), base)
            return result
    with tempfile.TemporaryDirectory() as tmp:
        ctx = prepare_context(case, Path(tmp) / "ctx")
        result = docker_build(ctx, case_options(case), f"pybuild-diffcase-{case.name}-{os.getpid()}",
                              parent_tag(case.name))
    stored = dict(result)
    if "fs" in stored:
        stored["fs_delta"] = _delta(stored.pop("fs"), base)
    RESULTS.mkdir(exist_ok=True)
    cached.write_text(json.dumps({"key": key, "result": stored}, indent=1, sort_keys=True) + "\n")
    return result


# --- pybuild -------------------------------------------------------------------------

def pybuild_build(ctx: Path, opts: dict, root: Path, pybuild: str, parent: str | None = None) -> dict:
    """Build ``ctx`` with ``pybuild build``; summarise the image from the store.

    ``parent``: the tag to build a two-build case's parent context under first.
    """
    if parent and parent_context(ctx).is_dir():
        subprocess.run([pybuild, "--root", str(root), "build", "-q", "-t", parent,
                        str(parent_context(ctx))], check=True, capture_output=True)
    iid = ctx.parent / "iid"
    cmd = [pybuild, "--root", str(root), "build", "--progress", "plain", "--iidfile", str(iid),
           "-f", str(ctx / "Dockerfile")]
    for k, v in (opts.get("build_args") or {}).items():
        cmd += ["--build-arg", f"{k}={v}" if v is not None else k]
    if opts.get("target"):
        cmd += ["--target", opts["target"]]
    with served(ctx):
        proc = subprocess.run(cmd + [str(ctx)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"ok": False, "error": (proc.stderr or proc.stdout).strip()[-2000:]}
    return summarize_store_image(root, iid.read_text().strip())


def summarize_store_image(root: Path, image_id: str) -> dict:
    """Summarise an image of pybuild's store, found by its config digest."""
    from registry.store import Store  # noqa: PLC0415

    store = Store(root)
    image = store.image(image_id)
    streams = (_uncompressed(store.open_blob(layer.digest), layer.media_type)
               for layer in image.layers)
    return summarize(image.config, streams)


def _uncompressed(fileobj, media_type: str):
    """A layer blob as an uncompressed stream (gzip, zstd or plain tar)."""
    if media_type.endswith("gzip"):
        import gzip  # noqa: PLC0415
        return gzip.GzipFile(fileobj=fileobj)
    if media_type.endswith("zstd"):
        import zstandard  # noqa: PLC0415
        return zstandard.ZstdDecompressor().stream_reader(fileobj)
    return fileobj


# --- comparison ----------------------------------------------------------------------

def compare(docker: dict, ours: dict) -> list[str]:
    """Human-readable differences between two results (empty when they agree)."""
    diffs = []
    if docker["ok"] != ours["ok"]:
        which = "docker" if not docker["ok"] else "pybuild"
        err = docker.get("error") if not docker["ok"] else ours.get("error")
        return [f"only {which} failed: {err}"]
    if not docker["ok"]:
        return []
    for key in CONFIG_KEYS:
        if docker["config"][key] != ours["config"][key]:
            diffs.append(f"config {key}: docker {docker['config'][key]!r} pybuild {ours['config'][key]!r}")
    if docker["history"] != ours["history"]:
        diffs.append(f"history empty_layer: docker {docker['history']} pybuild {ours['history']}")
    theirs = [_hashes_by_kind(t) for t in docker.get("created_by", [])]  # cached results may predate it
    if "created_by" in docker and theirs != ours["created_by"]:
        pairs = zip(theirs, ours["created_by"])
        diffs += [f"history created_by: docker {d!r} pybuild {o!r}" for d, o in pairs if d != o]
        if len(docker["created_by"]) != len(ours["created_by"]):
            diffs.append(f"history length: docker {len(docker['created_by'])} pybuild {len(ours['created_by'])}")
    dfs, ofs = docker["fs"], ours["fs"]
    for path in sorted(set(dfs) | set(ofs)):
        if path not in ofs:
            diffs.append(f"missing in pybuild: /{path} {dfs[path]}")
        elif path not in dfs:
            diffs.append(f"extra in pybuild: /{path} {ofs[path]}")
        elif dfs[path] != ofs[path]:
            diffs.append(f"differs: /{path} docker {dfs[path]} pybuild {ofs[path]}")
    return diffs


def main(argv: list[str]) -> int:
    """``python harness.py [CASE...]``: refresh docker's results and print each outcome."""
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "rootfs.tar"
        sha = base_rootfs_tar(tar)
        ensure_docker_base(tar, sha)
        for name in argv or case_names():
            result = docker_result(CASES / name, tar, sha)
            status = "ok" if result["ok"] else "rejected: " + result["error"].splitlines()[-1]
            print(f"{name}: {status}", flush=True)
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv[1:]))
