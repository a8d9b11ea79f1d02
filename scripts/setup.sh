#!/usr/bin/env bash
# Install everything pybuild and its tests need on a fresh Debian machine (run as root):
# the Debian peers and fixtures, then a virtualenv at .venv with pybuild and its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  busybox-static debootstrap docker-registry docker.io podman buildah skopeo umoci oci-image-tool runc
  pigz apache2-utils uidmap iproute2 hyperfine time python3-seccomp bzip2 xz-utils git
  qemu-user-static tini linux-libc-dev containernetworking-plugins iptables passt slirp4netns docker-compose
  curl
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Foreign packages (busybox-static:arm64 for the multi-platform tests) are fetched with
# `apt-get download`, which needs the architecture known to dpkg and its package lists.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup: adding the arm64 architecture to dpkg (for apt-get download busybox-static:arm64)"
  dpkg --add-architecture arm64
  apt-get update -qq
fi

# RUN steps of foreign platforms run under qemu user emulation. Every qemu-user-static
# handler is registered with binfmt_misc with the F flag (the kernel opens the interpreter
# now, so it works inside a container's mount namespace where /usr/libexec is absent).
BINFMT=/proc/sys/fs/binfmt_misc
if [ ! -e "$BINFMT/register" ]; then
  mount -t binfmt_misc binfmt_misc "$BINFMT"
fi
for conf in /usr/lib/binfmt.d/qemu-*.conf; do
  name=$(basename "$conf" .conf)
  if [ -e "$BINFMT/$name" ]; then
    grep -q '^flags: .*F' "$BINFMT/$name" && continue
    echo -1 > "$BINFMT/$name"     # registered without F: replace it
  fi
  line=$(grep -v '^#' "$conf" | head -n 1)
  case "${line##*:}" in *F*) ;; *) line="${line}F" ;; esac
  printf '%s' "$line" > "$BINFMT/register"
done

# Rootless networking (pasta, slirp4netns) opens /dev/net/tun as a normal user. udev
# gives it mode 0666 on a Debian host; a machine without udev may have left it 0600.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
  chmod 0666 /dev/net/tun
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# compat mode: a plain path in a .pth, no import-hook finder (saves ~20 ms per start)
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]' --config-settings editable_mode=compat
echo "setup: ready (.venv/bin/pybuild)"
