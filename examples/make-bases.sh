#!/bin/sh
# Make the base images the examples build FROM, in the pybuild store ($PYBUILD_ROOT):
#   busybox:latest        a rootfs of the host's static busybox (no network needed)
#   debian:bookworm       debootstrap --variant=minbase (needs a Debian mirror)
# Usage: examples/make-bases.sh [busybox|debian|all]   (default: busybox)
# Environment:
#   PYBUILD          the pybuild command (default: pybuild)
#   DEBIAN_MIRROR    the mirror debootstrap fetches from, e.g. http://ftp.de.debian.org/debian
#                    or a local proxy (default: unset, debootstrap's own default mirror)
set -eu
PYBUILD=${PYBUILD:-pybuild}
what=${1:-busybox}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$what" = busybox ] || [ "$what" = all ]; then
    root="$work/busybox"
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/proc" "$root/dev" "$root/sys"
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    /bin/busybox --install -s "$root/bin"
    # applets as absolute links into the image (the install above points at the host path)
    for link in "$root"/bin/*; do [ -L "$link" ] && ln -sf /bin/busybox "$link"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    $PYBUILD import "$root" busybox:latest
fi

if [ "$what" = debian ] || [ "$what" = all ]; then
    # shellcheck disable=SC2086  # the mirror is one optional word
    debootstrap --variant=minbase bookworm "$work/debian" ${DEBIAN_MIRROR:-}
    $PYBUILD import "$work/debian" debian:bookworm
fi
