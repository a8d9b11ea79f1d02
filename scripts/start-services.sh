#!/usr/bin/env bash
# Start the daemons the differential and interop tests talk to (idempotent).
# The registry is started by the tests themselves, one per set-up, on free ports.
set -euo pipefail
if ! docker info >/dev/null 2>&1; then
  echo "services: starting dockerd (--iptables=false --bridge=none)"
  nohup dockerd --iptables=false --bridge=none >/tmp/pybuild-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "services: dockerd did not start; see /tmp/pybuild-dockerd.log" >&2; exit 1; }
fi
echo "services: dockerd ready"
