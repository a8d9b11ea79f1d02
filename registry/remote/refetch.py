"""Fetch a blob of the store again from where it came from (``pybuild fsck --repair``).

Pulls record which repositories hold each blob (:mod:`.origins`); a blob found
corrupt is fetched again from those, verified as it streams, before the image that
needs it is given up.
"""

from __future__ import annotations

import logging

from .. import oci
from ..errors import PybuildError
from ..image import StoreSink
from ..store import Store
from .client import RegistryClient
from .origins import BlobOrigins

log = logging.getLogger(__name__)


def refetcher(store: Store, *, insecure: bool = False):
    """A ``refetch(desc)`` for :meth:`Store.repair`: the origin it stored ``desc`` from, or None."""
    origins = BlobOrigins(store.root)
    sink = StoreSink(store)

    def refetch(desc: oci.Descriptor) -> str | None:
        for registry, repository in origins.locations(desc.digest):
            try:
                with RegistryClient(registry, repository, insecure=insecure).open_blob(desc) as stream:
                    sink.write_blob(desc, stream)  # type: ignore[arg-type]  # a readable binary stream
                return f"{registry}/{repository}"
            except (PybuildError, OSError) as err:
                log.debug("fetching %s from %s/%s failed: %s", desc.digest, registry, repository, err)
        return None

    return refetch
