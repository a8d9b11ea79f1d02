"""``/images/get``, ``/images/{name}/get`` and ``/images/load``: what ``docker save`` and
``docker load`` exchange, a docker-archive tar, written and read by the same code as
``pybuild save`` and ``pybuild load``."""

from __future__ import annotations

import shutil
from typing import IO, cast

from base.removal import remove_tree
from registry.errors import ImageNotFound, PybuildError
from registry.store import Store

from .http import ApiError, BodyReader, Request


def get_one(req: Request) -> None:
    """``GET /images/{name}/get``."""
    _send_archive(req, [req.params[0]])


def get_many(req: Request) -> None:
    """``GET /images/get?names=A&names=B``: one archive holding them all."""
    names = req.args("names")
    if not names:
        raise ApiError(400, "no image names given: use names=IMAGE")
    _send_archive(req, names)


def _send_archive(req: Request, names: list[str]) -> None:
    from builder.commands.save import resolve_images, write_archive

    store = Store(req.root)
    try:
        images = resolve_images(store, names)  # an unknown name is a 404, before the archive starts
    except (ImageNotFound, PybuildError) as err:
        raise ApiError(404, str(err)) from None
    body = req.stream("application/x-tar")
    write_archive(store, images, cast(IO[bytes], body), "docker-archive")  # a failure now cuts the stream short
    body.close()


def load(req: Request) -> None:
    """``POST /images/load``: the body (docker-archive or OCI archive) is spooled in the
    store, loaded, and answered with docker's JSON lines, ``{"stream": "Loaded image: NAME\\n"}``."""
    from builder.commands.load import load_archive

    store = Store(req.root)
    with store.transaction():
        spool = store.temp_dir("load")
        body = None
        try:
            path = spool / "archive.tar"
            with open(path, "wb") as out:
                shutil.copyfileobj(BodyReader(req.body_chunks()), out, 1 << 20)
            body = req.stream()
            try:
                for line in load_archive(store, str(path)):
                    body.json({"stream": line + "\n"})
            except Exception as err:  # the answer has begun: the error is a message of the stream
                text = str(err)
                body.json({"errorDetail": {"message": text}, "error": text})
        finally:
            remove_tree(spool, ignore_errors=True)  # before the answer ends: the client sees a clean store
        body.close()

ROUTES = [
    ("GET", r"/images/get", get_many),
    ("GET", r"/images/(.+)/get", get_one),
    ("POST", r"/images/load", load),
]
