"""Image signatures in cosign's format, and containers' verification policy.

- ``keys``: ECDSA P-256 key pairs (PEM, the private key encrypted), sign and verify bytes.
- ``simplesigning``: the signed payload (``critical.identity`` / ``critical.image`` / ``type``).
- ``cosign``: where signatures live in a registry (the ``sha256-<hex>.sig`` tag) and how
  they are read and appended.
- ``verify``: which of an image's signatures a key accepts, and why the others fail.
- ``policy``: containers' ``policy.json`` (the file skopeo and podman read) and its verdict
  on a pull.
"""
