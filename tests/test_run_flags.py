"""``pybuild run`` flags of daily use (labels, --stop-timeout, --pull), against ``docker run``
on the same image where docker 20.10 has them."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
from runner_helpers import image_variant, needs_root

pytestmark = needs_root


@pytest.fixture(scope="module")
def docker_labelled(docker, busybox_tar):
    name = f"pybuild-flags:{os.getpid()}"
    subprocess.run([docker, "import", "--change", "LABEL from.image=yes", str(busybox_tar), name],
                   check=True, capture_output=True)
    yield name
    subprocess.run([docker, "rmi", "-f", name], capture_output=True)


def names_column(text: str) -> list[str]:
    return sorted(line.split()[-1] for line in text.splitlines()[1:])


def test_labels_and_ps_filter_same_as_docker(pybuild, root, busybox_image, docker_labelled, tmp_path):
    image = image_variant(root, busybox_image, "labelled:1", Labels={"from.image": "yes"})
    label_file = tmp_path / "labels"
    label_file.write_text("# team labels\nteam=web\n\ntier\n")
    tag = uuid.uuid4().hex[:8]
    runs = {f"a{tag}": ["-l", "env=prod", "--label-file", str(label_file)], f"b{tag}": ["--label", "env=dev"],
            f"c{tag}": ["-l", "from.image=no"]}
    try:
        for name, flags in runs.items():
            pybuild("run", "--name", name, *flags, image, "true")
            subprocess.run(["docker", "run", "--network", "host", "--name", name, *flags, docker_labelled, "true"],
                           check=True, capture_output=True)
        for filters in (["label=env=prod"], ["label=env"], ["label=team=web", "label=tier"], ["label=from.image=yes"],
                        ["label=env", "label=from.image=yes"], ["label=nosuch"]):
            args = [a for f in filters for a in ("--filter", f)]
            mine = names_column(pybuild("ps", "-a", *args).stdout.decode())
            theirs = subprocess.run(["docker", "ps", "-a", *args, "--format", "x {{.Names}}"], capture_output=True,
                                    text=True, check=True).stdout
            assert mine == sorted(n for n in (line.split()[-1] for line in theirs.splitlines()) if n.endswith(tag)), filters
    finally:
        subprocess.run(["docker", "rm", "-f", *runs], capture_output=True)


def test_bad_filter_is_a_one_line_error(pybuild):
    proc = pybuild("ps", "--filter", "status=running", check=False)
    assert proc.returncode != 0 and "only label=KEY" in proc.stderr.decode() and b"Traceback" not in proc.stderr


def test_pull_never_same_exit_code_as_docker(pybuild, docker):
    missing = f"pybuild-missing-{uuid.uuid4().hex[:8]}:latest"
    theirs = subprocess.run([docker, "run", "--rm", "--pull=never", missing, "true"], capture_output=True)
    mine = pybuild("run", "--rm", "--pull", "never", missing, "true", check=False)
    assert mine.returncode == theirs.returncode == 125
    assert "--pull=never" in mine.stderr.decode() and b"Unable to find image" not in mine.stderr
    bad = pybuild("run", "--rm", "--pull", "sometimes", missing, "true", check=False)
    assert bad.returncode == 125 and "use always, missing or never" in bad.stderr.decode()


def test_stop_timeout_is_the_containers_default_for_stop(pybuild, busybox_image):
    # sleep as pid 1 ignores SIGTERM: only the SIGKILL after the timeout ends it
    pybuild("run", "-d", "--name", "slow", "--stop-timeout", "0", busybox_image, "sleep", "1000")
    pybuild("stop", "slow", timeout=8)  # the default 10 s would overrun this
    assert pybuild("wait", "slow").stdout.decode().strip() == "137"
