"""``POST /build``: a tar context in the body (what ``docker build`` sends with
DOCKER_BUILDKIT=0, ``.dockerignore`` already applied by the client), built by the
builder's executor; progress as ``{"stream": ...}`` lines and the ID as ``{"aux": ...}``."""

from __future__ import annotations

import io
import os
import re
from typing import Any

from base.removal import remove_tree

from .http import ApiError, BodyReader, Chunked, Request


class _ProgressStream(io.TextIOBase):
    """The executor's progress lines, each sent as docker's ``{"stream": line}``."""

    def __init__(self, body: Chunked):
        self.body = body

    def write(self, text: str) -> int:
        if text:
            self.body.json({"stream": text})
        return len(text)

    def isatty(self) -> bool:
        return False


def _context_dir(req: Request) -> str:
    """The body unpacked, by the one hostile-input extractor, into a fresh dir under ``$ROOT/tmp``."""
    from registry.layer.extract import extract_layer
    from registry.layer.stream import open_layer
    from registry.tempfiles import temp_name

    os.makedirs(os.path.join(req.root, "tmp"), exist_ok=True)
    target = os.path.join(req.root, "tmp", temp_name("build-context"))  # swept if the service dies
    os.mkdir(target, 0o700)
    reader = BodyReader(req.body_chunks())
    try:
        extract_layer(open_layer(reader), target, whiteouts="none", allow_setuid=True, name="build context")
        reader.drain()  # the tar's trailing blocks: answer only once the client has sent everything
    except Exception:
        remove_tree(target, ignore_errors=True)
        raise
    return target


def build(req: Request) -> None:
    from builder.build.context import Context
    from builder.build.executor import BuildOptions, Executor
    from builder.build.progress import Progress
    from builder.commands.build import automatic_args
    from builder.dockerfile.stages import plan
    from registry.platform import host, parse
    from registry.reference import parse as parse_reference

    tags = [v for k, v in _query_items(req) if k == "t"]
    for tag in tags:
        try:
            parse_reference(tag)
        except Exception as err:
            raise ApiError(400, str(err)) from None
    build_args = {k: v for k, v in (req.json_query("buildargs") or {}).items()}
    labels = {k: str(v) for k, v in (req.json_query("labels") or {}).items()}
    target_platform = parse(req.arg("platform")) if req.arg("platform") else None
    context_dir = _context_dir(req)
    body = req.stream()
    try:
        name = req.arg("dockerfile") or "Dockerfile"
        path = os.path.join(context_dir, name)
        if not os.path.realpath(path).startswith(context_dir + os.sep):
            raise ApiError(400, f"the Dockerfile {name} is outside the build context")
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                text = fh.read()
        except OSError:
            raise ApiError(400, f"Cannot locate specified Dockerfile: {name}") from None
        build_plan = plan(text, build_args, req.arg("target") or None, path=name,
                          automatic=automatic_args(target_platform or host()))
        progress = Progress("plain", stream=_ProgressStream(body), quiet=req.flag("q"))  # type: ignore[arg-type]
        options = BuildOptions(root=req.root, context=Context(context_dir), tags=tags, no_cache=req.flag("nocache"),
                               labels=labels, platform=target_platform)
        result = Executor(build_plan, options, progress).build()
        body.json({"aux": {"ID": result.id}})
        if req.flag("q"):  # docker's quiet build answers with the ID alone
            body.json({"stream": result.id + "\n"})
        else:
            body.json({"stream": f"Successfully built {result.id.split(':')[-1][:12]}\n"})
            for tag in tags:
                body.json({"stream": f"Successfully tagged {tag}\n"})
    except Exception as err:
        text = getattr(err, "message", None) or str(err)
        # the legacy builder's CLI exits with a failed RUN's code (the builder says it only in its message)
        failed_run = re.search(r"returned a non-zero code: (\d+)$", text)
        detail: dict[str, Any] = {"message": text}
        if failed_run:
            detail["code"] = int(failed_run.group(1))
        body.json({"errorDetail": detail, "error": text})
    finally:
        remove_tree(context_dir, ignore_errors=True)
    body.close()


def _query_items(req: Request) -> list[tuple[str, str]]:
    """Every query pair (``t`` may repeat)."""
    from urllib.parse import parse_qsl, urlsplit

    return parse_qsl(urlsplit(req.handler.path).query, keep_blank_values=True)


ROUTES = [
    ("POST", r"/build", build),
]
