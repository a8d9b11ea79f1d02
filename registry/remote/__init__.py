"""The OCI Distribution client: talk to registries over HTTP(S) with httpx.

- :mod:`.transport`: the httpx client, TLS trust, plain-HTTP policy, retries;
- :mod:`.auth`: ``WWW-Authenticate`` challenges, basic and bearer-token auth;
- :mod:`.credentials`: docker's ``config.json``, credential helpers;
- :mod:`.client`: the distribution API for one repository (blobs, uploads, manifests);
- :mod:`.source` / :mod:`.sink`: a registry as an image source or sink for
  :func:`registry.image.copy_image`;
- :mod:`.pull` / :mod:`.push`: the ``pybuild pull`` / ``push`` operations.

Nothing here is imported by ``registry`` itself, so commands that never touch the
network never pay for httpx.
"""
