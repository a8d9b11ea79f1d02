"""The error every Dockerfile problem raises: ``FILE:LINE: what is wrong``."""

from __future__ import annotations

from registry.errors import PybuildError


class DockerfileError(PybuildError):
    """A Dockerfile the builder rejects; ``str()`` is ``path:line: message``.

    ``line`` is the 1-based line of the instruction (0 when the problem is not
    tied to one line, e.g. an unknown ``--target``); ``message`` is the bare text.
    """

    def __init__(self, message: str, path: str = "Dockerfile", line: int = 0) -> None:
        self.message = message
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")
