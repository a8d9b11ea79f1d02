"""Error types shared by every pybuild package.

A :class:`PybuildError` is a user-facing failure: the CLI prints its message on one
line and exits with :attr:`PybuildError.exit_code`; no traceback unless ``--debug``.
"""


class PybuildError(Exception):
    """A failure the user can act on; ``str(err)`` says what failed and what to do."""

    exit_code = 1


class InvalidReference(PybuildError):
    """An image name that does not follow the reference grammar."""


class ImageNotFound(PybuildError):
    """No image by that name in the store (or at the registry)."""


class StoreCorrupt(PybuildError):
    """A blob or index in the store does not match what it claims to be."""


class DigestMismatch(PybuildError):
    """Content did not hash to the digest it was expected to have."""


class BadArchive(PybuildError):
    """An input file is not a readable tar/archive of a known format."""
