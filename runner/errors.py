"""The runner's user-facing error: exit code 125, as docker uses for a container it could not create or start."""

from registry.errors import PybuildError


class RunError(PybuildError):
    """A container could not be created or started (bad option, name in use, missing user)."""

    exit_code = 125
