"""Container networking behind one interface, so another backend can take its place.

:func:`backend` gives the object ``runner.lifecycle`` talks to: ``setup(container)``
before start (returns the namespace path and the /etc/hosts and resolv.conf text),
``started(container)``, ``teardown(root, cid)`` at exit or after a crash,
``sweep(root)`` from every command, and ``connect``/``disconnect``.  Two backends:
:mod:`.cni_backend` on the CNI reference plugins (root), and :mod:`.rootless_backend`
on ``pasta``/``slirp4netns`` (rootless mode's default network).

Modules: :mod:`.cni` (the plugin protocol), :mod:`.config` (network definitions),
:mod:`.state` (teardown records), :mod:`.netns` (namespace files), :mod:`.ports`
(``-p``/``-P``), :mod:`.names` (/etc/hosts, resolv.conf), :mod:`.isolation`.
"""

from __future__ import annotations

BUILTIN = ("host", "none")


def needs_setup(mode: str) -> bool:
    """Whether ``--network MODE`` gets its own namespace attached to networks."""
    return mode not in BUILTIN and not mode.startswith("container:")


def backend():
    """The network backend of this pybuild: CNI for root, a user-mode stack (pasta or
    slirp4netns, :mod:`.rootless_backend`) in rootless mode."""
    from base import rootless

    if rootless.active():
        from . import rootless_backend

        return rootless_backend
    from . import cni_backend

    return cni_backend


def sweep(root: str) -> None:
    """Undo the networks of containers whose owner died; cheap when there is nothing to do."""
    from . import state

    if state.recorded(root):
        backend().sweep(root)
