"""What RUN sees and what history records, checked against docker on a busybox image.

The front-end decides the environment of a RUN (Env, declared ARGs, proxy
build args) and the ``|N K=V ... /bin/sh -c cmd`` history text docker
writes for it. These tests build with docker and compare both with
``StageScope.run_env()`` / ``history_args()``.
"""

from __future__ import annotations

import subprocess

import pytest

from builder.dockerfile import DEFAULT_SHELL, Run, Shell, StageScope, plan
from dockerfile_helpers import docker_build, docker_rmi, write_context

IMAGE = "pybuild-dockerfile-test/busybox:latest"
NAMES = ("A", "B", "G", "E", "HTTP_PROXY", "http_proxy", "NO_PROXY", "UNDECLARED", "V")


@pytest.fixture(scope="module")
def docker_busybox(docker, busybox_tar) -> str:
    subprocess.run(["docker", "import", str(busybox_tar), IMAGE], check=True, capture_output=True)
    yield IMAGE
    subprocess.run(["docker", "rmi", "-f", IMAGE], capture_output=True)


CASES = {
    "args-and-env": ("ARG G=global\nFROM {image}\nARG A=1 B\nENV E=env\nRUN env > /env.txt\n",
                     {"B": "given", "UNDECLARED": "x"}),
    "global-redeclared": ("ARG G=global\nFROM {image}\nARG G\nRUN env > /env.txt\n", {}),
    "env-overrides-arg": ("FROM {image}\nARG V=arg\nENV V=env\nARG A=a\nRUN env > /env.txt\n", {"V": "cli"}),
    "proxies": ("FROM {image}\nARG http_proxy\nRUN env > /env.txt\n",
                {"HTTP_PROXY": "http://p:1", "http_proxy": "http://q:2", "NO_PROXY": "localhost"}),
    "arg-after-run": ("FROM {image}\nRUN env > /env.txt\nARG A=late\n", {"A": "cli"}),
    "exec-form-and-shell": ('FROM {image}\nARG A=1\nRUN ["sh", "-c", "env > /env.txt"]\n'
                            'SHELL ["/bin/sh", "-xc"]\nRUN echo "$A" \\\n  && true\n', {}),
}


def _ours(text: str, build_args: dict) -> tuple[dict[str, str], list[str]]:
    p = plan(text, build_args)
    scope = StageScope(p.build_args)
    env: dict[str, str] = {}
    history: list[str] = []
    shell = list(DEFAULT_SHELL)
    for inst in p.stages[-1].instructions:
        inst = scope.apply(inst)
        if isinstance(inst, Shell):
            shell = list(inst.shell)
        if isinstance(inst, Run):
            env = dict(item.split("=", 1) for item in scope.run_env())
            args = scope.history_args()
            cmd = " ".join(inst.argv(shell))
            history.append(f"|{len(args)} {' '.join(args)} {cmd}" if args else cmd)
    return {k: v for k, v in env.items() if k in NAMES}, history


def _docker(ctx, image_id: str) -> tuple[dict[str, str], list[str]]:
    container = subprocess.run(["docker", "create", image_id, "true"], capture_output=True, text=True,
                               check=True).stdout.strip()
    try:
        out = subprocess.run(["docker", "cp", f"{container}:/env.txt", "-"], capture_output=True,
                             check=True).stdout
    finally:
        subprocess.run(["docker", "rm", container], capture_output=True)
    tar_path = ctx / "env.tar"
    tar_path.write_bytes(out)
    import tarfile
    with tarfile.open(tar_path) as tar:
        text = tar.extractfile("env.txt").read().decode()
    env = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    history = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image_id],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    runs = [h for h in reversed(history) if h and "#(nop)" not in h]
    return {k: v for k, v in env.items() if k in NAMES}, runs


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_run_scope_matches_docker(docker_busybox, tmp_path, name: str) -> None:
    template, build_args = CASES[name]
    text = template.format(image=docker_busybox)
    write_context(tmp_path, {"Dockerfile": text})
    cli = [arg for k, v in build_args.items() for arg in ("--build-arg", f"{k}={v}")]
    rc, out, image = docker_build(tmp_path, "Dockerfile", *cli)
    try:
        assert rc == 0, out
        assert _ours(text, build_args) == _docker(tmp_path, image)
    finally:
        docker_rmi(image)
