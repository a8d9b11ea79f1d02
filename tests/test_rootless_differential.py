"""Differential: cases of tests/differential built rootless and as root give the same image digest.

With SOURCE_DATE_EPOCH set both builds are deterministic, so any difference in what a
user namespace sees (owners, xattrs, whiteouts, opaque dirs) shows as a different digest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rootless_helpers import RootlessCLI, rootless, rootless_pythonpath, rootless_user  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent / "differential"))
import harness  # noqa: E402

EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}
# Cases that need nothing the rootless build cannot have (device nodes in a layer need
# CAP_MKNOD outside any user namespace; a served http/ directory would share one port).
CASES = [
    "add_chown_archive_and_file", "add_local_file_and_dir", "add_local_tars", "add_tar_hardlinks_whiteout_names",
    "add_tar_into_existing", "add_tar_over_existing", "add_tar_with_links_and_modes", "app_workdir_copy_all",
    "arg_before_from", "arg_build_args", "arg_default_refs_other", "arg_empty_build_arg",
]


def _candidates() -> list[str]:
    """The listed cases plus every RUN-using case that builds (no expected error, no http/, no parent)."""
    names = list(CASES)
    for name in harness.case_names():
        case = harness.CASES / name
        dockerfile = (case / "Dockerfile").read_text()
        if (name in names or (case / "expect-error").exists() or (case / "http").exists()
                or (case / "parent").exists() or "RUN " not in dockerfile or "mknod" in dockerfile):
            continue
        names.append(name)
        if len(names) >= 24:
            break
    return names


def _build(cli, ctx: Path, opts: dict, iid: Path) -> str:
    cmd = ["build", "-q", "--iidfile", str(iid), "-f", str(ctx / "Dockerfile")]
    for k, v in (opts.get("build_args") or {}).items():
        cmd += ["--build-arg", f"{k}={v}" if v is not None else k]
    if opts.get("target"):
        cmd += ["--target", opts["target"]]
    cli(*cmd, str(ctx), env=EPOCH)
    return iid.read_text().strip()


@pytest.fixture
def bases(rootless: RootlessCLI, pybuild):
    tar = rootless.workdir / "base.tar"
    harness.base_rootfs_tar(tar)
    rootless.give(tar)
    for cli in (rootless, pybuild):
        cli("import", str(tar), "diffbase", env=EPOCH)
    return rootless, pybuild


def test_twenty_cases_same_digest_rootless_and_root(bases):
    rl, root_cli = bases
    names = _candidates()
    assert len(names) >= 20
    differ, built = [], 0
    for name in names:
        work = rl.workdir / "cases" / name
        work.mkdir(parents=True)
        ctx = harness.prepare_context(harness.CASES / name, work / "ctx")
        rl.give(work)
        subprocess.run(["chmod", "-R", "u+rwX", str(work)], check=True)
        opts = harness.case_options(harness.CASES / name)
        ours = _build(rl, ctx, opts, work / "iid-rootless")
        theirs = _build(root_cli, ctx, opts, work / "iid-root")
        built += 1
        if ours != theirs:
            differ.append(f"{name}: rootless {ours} root {theirs}")
    assert built >= 20
    assert not differ, "\n".join(differ)
