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

# busybox_rootfs DIR BINARY: a rootfs with BINARY as /bin/busybox and the host busybox's applet links
busybox_rootfs() {
    root=$1
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/proc" "$root/dev" "$root/sys"
    chmod 1777 "$root/tmp"
    cp "$2" "$root/bin/busybox"
    /bin/busybox --install -s "$root/bin"
    # applets as absolute links into the image (the install above points at the host path)
    for link in "$root"/bin/*; do [ -L "$link" ] && ln -sf /bin/busybox "$link"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
}

if [ "$what" = busybox ] || [ "$what" = all ]; then
    busybox_rootfs "$work/busybox" /bin/busybox
    $PYBUILD import "$work/busybox" busybox:latest
fi

if [ "$what" = debian ] || [ "$what" = all ]; then
    # shellcheck disable=SC2086  # the mirror is one optional word
    debootstrap --variant=minbase bookworm "$work/debian" ${DEBIAN_MIRROR:-}
    $PYBUILD import "$work/debian" debian:bookworm
fi

# examples/make-bases.sh multiarch (also made by `all`):
#   busybox-multiarch     an index: linux/amd64 (the host's busybox) + linux/arm64 (Debian's
#                         busybox-static:arm64 package; needs `dpkg --add-architecture arm64`,
#                         which scripts/setup.sh does, and the Debian mirror)
if [ "$what" = multiarch ] || [ "$what" = all ]; then
    busybox_rootfs "$work/amd64" /bin/busybox
    (cd "$work" && apt-get download busybox-static:arm64)
    dpkg-deb -x "$work"/busybox-static_*_arm64.deb "$work/arm64-deb"
    busybox_rootfs "$work/arm64" "$work/arm64-deb/bin/busybox"
    $PYBUILD import --platform linux/amd64 "$work/amd64" busybox-multiarch:amd64
    $PYBUILD import --platform linux/arm64 "$work/arm64" busybox-multiarch:arm64
    # the index: one build, each platform's FROM picked by the automatic TARGETARCH arg
    printf 'ARG TARGETARCH\nFROM busybox-multiarch:$TARGETARCH\n' |
        $PYBUILD build -q --platform linux/amd64,linux/arm64 -t busybox-multiarch:latest -
fi
