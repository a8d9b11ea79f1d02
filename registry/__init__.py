"""Images at rest and in transit: references, the OCI model, the local store, layers, remotes."""
