#!/usr/bin/env bash
# The main job, from nothing: set up, make a busybox base image, build the hello
# example with pybuild and run it.  Needs no network beyond the setup step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export PYBUILD=pybuild
echo "== pybuild import (busybox base image)"
sh examples/make-bases.sh busybox
echo "== pybuild build -t hello:latest examples/busybox-hello"
pybuild build -t hello:latest examples/busybox-hello
# --network none: the demo leaves the host's interfaces alone (the default, a bridge network
# with its own address, is shown in docs/network.md)
echo "== pybuild run --rm --network none hello:latest"
pybuild run --rm --network none hello:latest
