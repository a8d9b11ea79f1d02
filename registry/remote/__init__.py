"""The OCI Distribution client: talk to registries over HTTP(S) with httpx.

- :mod:`.transport`: the httpx client, TLS trust, plain-HTTP policy, retries;
- :mod:`.auth`: ``WWW-Authenticate`` challenges, basic and bearer-token auth;
- :mod:`.credentials`: docker's ``config.json`` and credential helpers; :mod:`.login`;
- :mod:`.session`: one registry host (ping, authenticated requests, error messages);
- :mod:`.client`: the distribution API for one repository (blobs, uploads, manifests);
- :mod:`.image`: a repository as an image source and sink for :func:`registry.image.copy_image`;
- :mod:`.locations`: every place ``pybuild copy`` knows, and :func:`~.locations.copy_between`;
- :mod:`.transfer`: progress, per-blob retries and concurrency around ``copy_image``;
  :mod:`.readahead`, :mod:`.origins` (mount hints), :mod:`.progress`;
- :mod:`.pull` / :mod:`.push`: ``pull_image`` and ``push_image``.

Nothing here is imported by the rest of ``registry``, so commands that never touch
the network never pay for httpx.
"""

import sys

# httpx's own command line (``httpx._main``) imports click, rich and pygments when they are
# installed: ~35 ms of every push and pull here, for a CLI we never run.  A ``None`` entry makes
# httpx's ``from ._main import main`` fail with ImportError, which httpx handles (it defines a stub).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
