"""``pybuild import --change``: the same config as ``docker import --change`` on the same rootfs."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from registry.store import Store

CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels",
               "StopSignal", "Healthcheck", "Shell", "OnBuild")

# every instruction docker 20.10 accepts (STOPSIGNAL came later: tested without docker below)
CHANGES = [
    ["ENV A=1 B=$A", "ENV PATH=/x:$PATH C=${A:-d}", "ENTRYPOINT [\"/bin/sh\"]", "CMD echo $A",
     "WORKDIR app", "WORKDIR sub", "EXPOSE 80 53/udp 7000-7001", "VOLUME /data [\"/b\"]", "USER app:staff",
     "LABEL a=\"b c\" d=e", "ONBUILD RUN x", "HEALTHCHECK --interval=5s --retries=2 CMD true"],
    ["CMD [\"a\"]", "ENTRYPOINT e"],        # a CMD given before ENTRYPOINT is kept
    ["ENTRYPOINT e", "CMD [\"a\"]"],
    ["ENV X ${UNSET:-dflt}", "VOLUME [\"/v1\", \"/v2\"]", "EXPOSE 9000/tcp", "USER 1000", "WORKDIR /abs/"],
    [],
]


def _picked(config: dict) -> dict:
    cfg = config.get("config") or {}
    return {k: cfg.get(k) or None for k in CONFIG_KEYS}


def _docker_import(tar, changes: list[str]) -> dict:
    tag = f"pybuild-import-change:{uuid.uuid4().hex[:12]}"
    cmd = ["docker", "import"] + [a for c in changes for a in ("--change", c)] + [str(tar), tag]
    subprocess.run(cmd, check=True, capture_output=True)
    try:
        out = subprocess.run(["docker", "image", "inspect", tag], check=True, capture_output=True).stdout
        return {"config": json.loads(out)[0]["Config"]}
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


@pytest.mark.docker
@pytest.mark.parametrize("changes", CHANGES, ids=[str(i) for i in range(len(CHANGES))])
def test_config_matches_docker_import(changes, docker, pybuild, root, busybox_tar) -> None:
    expected = _picked(_docker_import(busybox_tar, changes))
    pybuild("import", *[a for c in changes for a in ("--change", c)], str(busybox_tar), "imp:1")
    image = Store(root).image("imp:1")
    assert _picked(image.config) == expected
    assert len(image.config["history"]) == 1  # no history entry per change, as docker


def test_stopsignal_and_rejected_instructions(pybuild, root, busybox_tar) -> None:
    pybuild("import", "-c", "STOPSIGNAL SIGINT", str(busybox_tar), "imp:sig")
    assert Store(root).image("imp:sig").config["config"]["StopSignal"] == "SIGINT"
    for change in ("RUN true", "COPY a b", "FROM x", "SHELL [\"/bin/sh\"]", "ARG A=1", "MAINTAINER me"):
        proc = pybuild("import", "-c", change, str(busybox_tar), "imp:bad", check=False)
        err = proc.stderr.decode()
        assert proc.returncode != 0
        assert f"{change.split()[0]} is not a valid change command" in err, err
        assert err.count("\n") == 1  # one line, no traceback
    bad = pybuild("import", "-c", "STOPSIGNAL SIGNOPE", str(busybox_tar), "imp:bad", check=False)
    assert bad.returncode != 0 and "Invalid signal: SIGNOPE" in bad.stderr.decode()
    assert "imp:bad" not in pybuild("images").stdout.decode()
