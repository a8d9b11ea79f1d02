"""``inspect -f``, ``images --format/--filter``, ``ps --format/--filter`` with Go templates (issue 10).

The same Dockerfile is built by docker 20.10 (legacy builder) and by pybuild on the same
base, and each template CI scripts use is rendered by ``docker inspect -f`` and by
``pybuild inspect -f``: the outputs must be equal (a field docker cannot know the same
way, such as IDs and times, is not among them).  Errors are errors in both, never an
empty result or ``null``.
"""

from __future__ import annotations

import re
import secrets
import subprocess

import pytest

DOCKERFILE = """\
FROM {base}
LABEL org.opencontainers.image.source=https://example.invalid/repo maintainer="ci <ci@example.invalid>"
ENV APP_HOME=/app MODE=prod
EXPOSE 8080/tcp 53/udp
VOLUME /data
WORKDIR /app
USER 1000:1000
CMD ["serve", "--port", "8080"]
"""

PLAIN = "FROM {base}\nRUN true\n"

SAME = [
    "{{.Config.Labels}}",
    "{{json .Config.Labels}}",
    '{{index .Config.Labels "maintainer"}}',
    '{{index .Config.Labels "missing"}}',
    "{{.Config.Labels.maintainer}}",
    "{{.Config.Labels.missing}}",
    "{{.Config.Env}}",
    "{{json .Config.Env}}",
    "{{.Config.Cmd}}",
    "{{json .Config.Cmd}}",
    '{{join .Config.Cmd " "}}',
    "{{.Config.Entrypoint}}",
    "{{json .Config.Entrypoint}}",
    "{{.Config.ExposedPorts}}",
    "{{json .Config.ExposedPorts}}",
    "{{.Config.Volumes}}",
    "{{.Config.User}} {{.Config.WorkingDir}}",
    "{{len .Config.Env}} {{len .Config.Labels}}",
    "{{range .Config.Env}}{{.}};{{end}}",
    "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}\n{{end}}",
    '{{if eq .Os "linux"}}linux{{else}}other{{end}}',
    '{{printf "%s/%s user=%q" .Os .Architecture .Config.User}}',
    "{{.Config.Labels | json}}",
    "{{- .Os -}}",
    "{{with .Config}}{{.WorkingDir}}{{end}}",
    "{{.Config.Healthcheck}}",
    "{{len .RootFS.Layers}}",
]

ERRORS = ["{{.Nope}}", "{{.Config.Nope}}", "{{nosuchfunc .Os}}", "{{if .Os}}unclosed"]


@pytest.fixture
def both(docker, pybuild, busybox_image, busybox_tar, tmp_path):
    """(docker image, pybuild image) of the same Dockerfile on the same base; a plain one too."""
    tag = f"pybuild-fmt-{secrets.token_hex(4)}"
    subprocess.run(["docker", "import", str(busybox_tar), f"{tag}-base"], check=True, capture_output=True)
    pybuild("tag", busybox_image, f"{tag}-base")
    names = []
    for suffix, text in (("full", DOCKERFILE), ("plain", PLAIN)):
        ctx = tmp_path / suffix
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(text.format(base=f"{tag}-base"))
        subprocess.run(["docker", "build", "-q", "-t", f"{tag}-{suffix}", str(ctx)], check=True, capture_output=True)
        pybuild("build", "-q", "-t", f"{tag}-{suffix}", str(ctx))
        names.append(f"{tag}-{suffix}")
    yield names
    subprocess.run(["docker", "rmi", "-f", f"{tag}-base", *names], capture_output=True)


def _docker(fmt: str, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "image", "inspect", "-f", fmt, name], capture_output=True, text=True)


@pytest.mark.parametrize("fmt", SAME)
def test_inspect_format_matches_docker(both, pybuild, fmt):
    for name in both:
        theirs = _docker(fmt, name)
        assert theirs.returncode == 0, theirs.stderr
        ours = pybuild("inspect", "-f", fmt, name)
        assert ours.stdout.decode() == theirs.stdout, (fmt, name)


@pytest.mark.parametrize("fmt", ERRORS)
def test_inspect_format_errors_like_docker(both, pybuild, fmt):
    theirs = _docker(fmt, both[0])
    ours = pybuild("inspect", "-f", fmt, both[0], check=False)
    assert theirs.returncode != 0 and ours.returncode != 0, (theirs, ours)
    assert ours.stdout == b"" and ours.stderr.count(b"\n") == 1 and b"Traceback" not in ours.stderr
    match = re.search(r'(map has no entry for key "\w+"|function "\w+" not defined)', theirs.stderr)
    if match:
        assert match.group(1).encode() in ours.stderr, (theirs.stderr, ours.stderr)


def test_images_format_and_filters(pybuild, busybox_image, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text('FROM busybox\nLABEL team=ci tier=web\n')
    pybuild("build", "-q", "-t", "app/web:1", "-t", "app/web:2", str(ctx))
    out = pybuild("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=app/*").stdout.decode()
    assert sorted(out.split()) == ["app/web:1", "app/web:2"]
    out = pybuild("images", "--format", "{{.Repository}}", "-f", "label=team=ci", "-f", "reference=app/*:2")
    assert out.stdout.decode() == "app/web\n"
    assert pybuild("images", "--format", "{{.Tag}}", "-f", "label=team=other").stdout == b""
    assert pybuild("images", "--format", "{{.Tag}}", "-f", "dangling=true").stdout == b""
    table = pybuild("images", "--format", "table {{.Repository}}\t{{.Tag}}", "-f", "reference=busybox").stdout
    assert table.decode().splitlines() == ["REPOSITORY   TAG", "busybox      latest"]
    bad = pybuild("images", "--format", "{{.Nope}}", check=False)
    assert bad.returncode != 0 and b'no entry for key "Nope"' in bad.stderr
    wrong = pybuild("images", "-f", "colour=red", check=False)
    assert wrong.returncode != 0 and b"invalid filter" in wrong.stderr


def test_ps_format_and_filters(pybuild, busybox_image):
    pybuild("run", "--name", "fmt-one", busybox_image, "true")
    pybuild("run", "--name", "fmt-two", busybox_image, "sh", "-c", "exit 3", check=False)
    out = pybuild("ps", "-a", "--format", "{{.Names}} {{.State}} {{.Image}}").stdout.decode().splitlines()
    assert sorted(out) == ["fmt-one exited busybox:latest", "fmt-two exited busybox:latest"]
    only = pybuild("ps", "--filter", "name=two", "--filter", "status=exited", "--format", "{{.Names}}|{{.Status}}")
    assert re.fullmatch(r"fmt-two\|Exited \(3\) .* ago\n", only.stdout.decode())
    assert pybuild("ps", "--filter", "status=running", "--format", "{{.Names}}").stdout == b""


def test_images_format_and_filters_match_docker(docker, pybuild, busybox_image, busybox_tar, tmp_path):
    ns = f"pbfmt{secrets.token_hex(4)}"
    subprocess.run(["docker", "import", str(busybox_tar), f"{ns}/base:1"], check=True, capture_output=True)
    pybuild("tag", busybox_image, f"{ns}/base:1")
    names = []
    try:
        for repo, tag, label in (("web", "1", "web"), ("web", "2", "web"), ("api", "1", "api")):
            ctx = tmp_path / f"{repo}{tag}"
            ctx.mkdir()
            (ctx / "Dockerfile").write_text(f"FROM {ns}/base:1\nLABEL tier={label} team=ci\n")
            name = f"{ns}/{repo}:{tag}"
            names.append(name)
            subprocess.run(["docker", "build", "-q", "-t", name, str(ctx)], check=True, capture_output=True)
            pybuild("build", "-q", "-t", name, str(ctx))
        cases = [
            ["--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={ns}/*"],
            ["--format", "{{.Repository}} {{.Tag}}", "--filter", f"reference={ns}/web"],
            ["--format", "{{.Tag}}", "--filter", f"reference={ns}/*:1"],
            ["--format", "{{.Repository}}", "-f", "label=tier=api", "-f", f"reference={ns}/*"],
            ["--format", "{{.Repository}}:{{.Tag}}", "-f", "label=team", "-f", f"reference={ns}/web:*"],
            ["--format", "{{.Repository}}", "-f", f"reference={ns}/web:*", "-f", f"reference={ns}/api:*"],
        ]
        for args in cases:
            theirs = subprocess.run(["docker", "images", *args], check=True, capture_output=True, text=True).stdout
            ours = pybuild("images", *args).stdout.decode()
            assert sorted(ours.splitlines()) == sorted(theirs.splitlines()), args
    finally:
        subprocess.run(["docker", "rmi", "-f", *names, f"{ns}/base:1"], capture_output=True)
