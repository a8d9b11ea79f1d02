"""Build context: source resolution, .dockerignore, checksums and the hash cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.build.context import Context, HashCache, SourceError
from builder.dockerignore import DockerIgnore


def _tree(root: Path) -> Path:
    (root / "src" / "sub").mkdir(parents=True)
    (root / "src" / "a.txt").write_text("a\n")
    (root / "src" / "sub" / "b.txt").write_text("b\n")
    (root / "notes.log").write_text("log\n")
    (root / "keep.log").write_text("keep\n")
    return root


def test_checksum_ignores_mtime_and_owner_but_not_content_or_mode(tmp_path):
    ctx = Context(_tree(tmp_path))
    before = ctx.checksum("src")
    os.utime(tmp_path / "src" / "a.txt", (1, 1))
    os.chown(tmp_path / "src" / "a.txt", 1234, 1234)
    assert ctx.checksum("src") == before
    os.chmod(tmp_path / "src" / "a.txt", 0o600)
    assert ctx.checksum("src") != before
    os.chmod(tmp_path / "src" / "a.txt", 0o644)
    (tmp_path / "src" / "a.txt").write_text("A\n")
    assert ctx.checksum("src") != before


def test_hash_cache_reuses_and_revalidates(tmp_path):
    _tree(tmp_path / "ctx")
    cache_file = tmp_path / "hashes.json"
    first = Context(tmp_path / "ctx", hashes=HashCache(cache_file))
    digest = first.checksum("src")
    first.hashes.save()
    assert cache_file.exists()
    second = Context(tmp_path / "ctx", hashes=HashCache(cache_file))
    assert second.checksum("src") == digest and not second.hashes.dirty
    os.utime(tmp_path / "ctx" / "src" / "a.txt", (5, 5))
    assert second.checksum("src") == digest and second.hashes.dirty


def test_dockerignore_hides_sources_and_exceptions_apply(tmp_path):
    ignore = DockerIgnore(["*.log", "!keep.log", "src/sub"])
    ctx = Context(_tree(tmp_path), ignore.excluded)
    assert ctx.resolve("*.log") == ["keep.log"]
    assert [rel for rel, _, _ in ctx.walk("src")] == ["src/a.txt"]
    with pytest.raises(SourceError):
        ctx.resolve("notes.log")


def test_sources_outside_the_context_are_refused(tmp_path):
    ctx = Context(_tree(tmp_path / "ctx"))
    (tmp_path / "secret").write_text("x")
    with pytest.raises(SourceError, match="outside the build context"):
        ctx.resolve("../secret")
    os.symlink("/etc", tmp_path / "ctx" / "etc-link")
    assert ctx.host_path("etc-link/passwd") == str(tmp_path / "ctx" / "etc" / "passwd")


def test_wildcards_follow_go_filepath_match() -> None:
    """COPY wildcards are Go's: ``[^x]`` negates, ``[!x]`` is a class holding ``!``."""
    from builder.build.context import go_match

    assert go_match("[!f]*.txt", "file1.txt") and not go_match("[!f]*.txt", "g.txt")
    assert go_match("[^f]*.txt", "g.txt") and not go_match("[^f]*.txt", "file1.txt")
    assert go_match("file[0-9].txt", "file7.txt") and not go_match("file[0-9].txt", "filea.txt")
    assert go_match("a\\*b", "a*b") and not go_match("a\\*b", "axb")
    assert not go_match("[a-", "a")  # malformed: matches nothing
