"""Containers: namespaces, mounts, cgroups, rootfs assembly and the container lifecycle."""
