"""``.dockerignore``: pattern rules, file reading, the fast walk, and docker's verdicts.

The docker here is a 20.10 daemon driven by a recent CLI (28.x): with
``DOCKER_BUILDKIT=0`` the CLI itself walks the context with
moby/patternmatcher, and that is the behaviour these tests pin.

``test_walk_matches_docker`` sends each context to docker (``COPY . /ctx/`` on
scratch, then ``docker export``) and compares what arrived with our walk.
"""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from builder.dockerignore import DockerIgnore, DockerIgnoreError, find_ignore_file, load, read_patterns
from dockerfile_helpers import docker_build, docker_rmi, write_context

TREE = [
    "a.log", "keep.log", "b.txt", "c.tmp", "ab.txt", "a.txt", "z.txt", "x+y.txt",
    "docs/keep.md", "docs/other.md", "docs/sub/x.md", "node_modules/m.js",
    "sub/b", "sub/x.txt", "sub/deep/x", "sub/deep/y", "sub/important.tmp", "sub/node_modules/n.js",
    "src/main.c", "src/lib/util.c", "a/z", "a/q/z", "a/q/r/z", "empty/",
]

CASES = {
    "none": "",
    "log-exception": "*.log\n!keep.log\n",
    "double-star-dir": "**/node_modules\n",
    "dir-with-exception": "docs\n!docs/keep.md\n",
    "all-but-src": "*\n!src\n!Dockerfile\n",
    "cleaning": "# a comment\n  /a/./q/  \n\n./b.txt\n#sub\n",
    "double-star-middle": "a/**/z\n",
    "wildcard-exception": "**/*.tmp\n!**/important.tmp\n",
    "deep-exception": "sub\n!sub/deep/x\n",
    "star-slash": "*/b\n*/x.txt\n",
    "build-files": "Dockerfile\n.dockerignore\n",
    "class-and-question": "?.txt\n[ab]*.txt\n",
    "trailing-slash": "docs/\nsrc/lib/\n",
    "exception-pruned-by-wildcard": "*\n!*/x.txt\n!Dockerfile\n",
    "regex-chars": "x+y.txt\n",
    "prefix-double-star": "sr**\n",
    "star-star-suffix": "**.md\n",
    "exclude-then-reinclude-dir": "sub\n!sub\nsub/deep\n",
    "exception-before-exclusion": "!a/q\na\n",
    "exception-of-parent-does-not-carry": "*/*/*\n!sub/deep\n",
    "exception-then-star": "!a/q\n*\n!Dockerfile\n",
}


def _context(tmp_path: Path, ignore: str) -> Path:
    ctx = write_context(tmp_path / "ctx", {p: p for p in TREE})
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx/\n")
    if ignore:
        (ctx / ".dockerignore").write_text(ignore)
    return ctx


def _ours(ctx: Path) -> set[str]:
    rules = load(ctx)
    seen = set()
    for rel, _entry in rules.walk(ctx):
        seen.add(rel)
        parent = rel.rpartition("/")[0]
        while parent:  # docker creates parents of sent files
            seen.add(parent)
            parent = parent.rpartition("/")[0]
    return seen


def _docker(ctx: Path) -> set[str]:
    rc, out, image = docker_build(ctx)
    assert rc == 0, out
    try:
        container = subprocess.run(["docker", "create", image, "/none"], capture_output=True, text=True,
                                   check=True).stdout.strip()
        try:
            export = subprocess.run(["docker", "export", container], capture_output=True, check=True).stdout
        finally:
            subprocess.run(["docker", "rm", container], capture_output=True)
    finally:
        docker_rmi(image)
    tar_path = ctx.parent / "export.tar"
    tar_path.write_bytes(export)
    with tarfile.open(tar_path) as tar:
        names = {m.name.rstrip("/") for m in tar.getmembers()}
    return {n[len("ctx/"):] for n in names if n.startswith("ctx/")}


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_walk_matches_docker(docker, tmp_path: Path, name: str) -> None:
    ctx = _context(tmp_path, CASES[name])
    assert _ours(ctx) == _docker(ctx)


def _included(name: str, tmp_path: Path) -> set[str]:
    return _ours(_context(tmp_path, CASES[name]))


def test_examples(tmp_path: Path) -> None:
    got = _included("deep-exception", tmp_path / "1")
    assert "sub/deep/x" in got and "sub/deep/y" not in got and "sub/x.txt" not in got
    got = _included("exception-pruned-by-wildcard", tmp_path / "2")
    assert got == {"Dockerfile"}  # docker prunes dirs a wildcard exception would reach into
    got = _included("all-but-src", tmp_path / "3")
    assert got == {"Dockerfile", "src", "src/main.c", "src/lib", "src/lib/util.c"}


def test_read_patterns_cleans_like_docker() -> None:
    text = "\ufeff# c\n  /a/./b/ \n!  c//d\n\n#x\n !e\n/\n"
    assert read_patterns(text) == ["a/b", "!c/d", "!e", "/"]


@pytest.mark.parametrize("pattern,path,excluded", [
    ("*.go", "a.go", True), ("*.go", "d/a.go", False), ("**/*.go", "d/e/a.go", True),
    ("**/*.go", "a.go", True), ("a/**", "a/b/c", True), ("a/**", "a", False), ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True), ("a?c", "abc", True), ("a?c", "a/c", False), ("[a-c]x", "bx", True),
    ("[!a]x", "bx", False), ("\\*x", "*x", True), ("\\*x", "ax", False), ("a.b", "axb", False),
    ("foo", "foo/bar/baz", True), ("foo/bar", "foo/bar/baz", True), ("**", "anything/at/all", True),
    ("x+y", "x+y", True), ("(a)", "(a)", True), ("a$", "a$", True),
])
def test_pattern_rules(pattern: str, path: str, excluded: bool) -> None:
    assert DockerIgnore([pattern]).excluded(path) is excluded


def test_last_match_wins_and_exceptions() -> None:
    rules = DockerIgnore(["*.md", "!README.md", "README.md"])
    assert rules.excluded("README.md")
    rules = DockerIgnore(["*.md", "README.md", "!README.md"])
    assert not rules.excluded("README.md") and rules.excluded("x.md")


def test_excluded_agrees_with_walk(tmp_path: Path) -> None:
    for i, (name, text) in enumerate(sorted(CASES.items())):
        ctx = _context(tmp_path / str(i), text)
        rules = load(ctx)
        walked = {rel for rel, _ in rules.walk(ctx)}
        for rel in TREE + ["Dockerfile", ".dockerignore"]:
            rel = rel.rstrip("/")
            if (ctx / rel).exists():
                assert (rel not in walked) == rules.excluded(rel, (ctx / rel).is_dir()), (name, rel)


def test_can_skip_dir() -> None:
    rules = DockerIgnore(["node_modules", "build", "!build/keep"])
    assert rules.can_skip_dir("node_modules")
    assert not rules.can_skip_dir("build")
    assert not rules.can_skip_dir("src")


def test_bad_patterns() -> None:
    with pytest.raises(DockerIgnoreError):
        DockerIgnore(["!"])
    with pytest.raises(DockerIgnoreError):
        DockerIgnore(["a[b"])


def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    ctx = write_context(tmp_path, {"build/app.Dockerfile": "FROM scratch\n", ".dockerignore": "a\n",
                                   "build/app.Dockerfile.dockerignore": "b\n"})
    assert find_ignore_file(ctx, ctx / "build/app.Dockerfile") == ctx / "build/app.Dockerfile.dockerignore"
    assert find_ignore_file(ctx, ctx / "Dockerfile") == ctx / ".dockerignore"
    assert load(ctx, ctx / "build/app.Dockerfile").excluded("b")
    assert not load(ctx, ctx / "build/app.Dockerfile").excluded("a")
    assert not load(tmp_path / "build").excluded("a")


def test_walk_prunes_excluded_dirs(tmp_path: Path) -> None:
    ctx = tmp_path / "big"
    for d in range(20):
        (ctx / "node_modules" / f"d{d}").mkdir(parents=True)
        for f in range(50):
            (ctx / "node_modules" / f"d{d}" / f"f{f}").write_text("x")
    (ctx / "app.py").write_text("x")
    rules = DockerIgnore(["node_modules"])
    assert [rel for rel, _ in rules.walk(ctx)] == ["app.py"]


_PIECES = ["*", "**", "*.txt", "**/*.md", "sub", "sub/*", "!sub/deep", "!*.log", "a/**/z", "!a/q", "docs/",
           "?.txt", "[a-b]*", "!**/x.md", "src/lib", "!src", "*/node_modules", "!keep.log", "/a/./q", "**/deep/*",
           "Dockerfile", "!Dockerfile", "empty", "*/*/*", "!docs/keep.md", "x+y.txt", "a/q/r"]


@pytest.mark.docker
@pytest.mark.slow
def test_random_pattern_lists_match_docker(docker, tmp_path: Path) -> None:
    import random
    rng = random.Random(11)
    for i in range(12):
        patterns = [rng.choice(_PIECES) for _ in range(rng.randint(1, 5))] + ["!Dockerfile"]
        ctx = _context(tmp_path / str(i), "\n".join(patterns) + "\n")
        assert _ours(ctx) == _docker(ctx), patterns
