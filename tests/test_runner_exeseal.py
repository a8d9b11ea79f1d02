"""runner.exeseal: both ways of running a binary without exposing the file itself.

The read-only clone is what runs on this kernel (the attack itself is in
test_attack_container.py); the sealed memfd is the fallback for kernels before 5.12.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess

import pytest

from runner import exeseal
from runner_helpers import needs_root

pytestmark = needs_root


@pytest.fixture
def binary(tmp_path) -> str:
    """A private copy of a static binary (so nothing else executes it: no ETXTBSY)."""
    path = tmp_path / "busybox"
    shutil.copy("/bin/busybox", path)
    return str(path)


def _digest(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


@pytest.mark.parametrize("seal", [exeseal.read_only_clone, exeseal.sealed_copy], ids=["clone", "memfd"])
def test_sealed_binary_runs_and_cannot_be_written(binary, seal):
    before = _digest(binary)
    fd = seal(binary)
    try:
        run = subprocess.run(["busybox", "echo", "ran"], executable=f"/proc/self/fd/{fd}", pass_fds=(fd,),
                             capture_output=True)
        assert run.stdout == b"ran\n"
        # what a container holding /proc/PID/exe would try, with nothing executing the file now
        try:
            wfd = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
        except OSError as err:
            assert err.errno == errno.EROFS and seal is exeseal.read_only_clone
        else:
            try:
                with pytest.raises(PermissionError):  # F_SEAL_WRITE
                    os.pwrite(wfd, b"\0", 0)
            finally:
                os.close(wfd)
            assert seal is exeseal.sealed_copy
    finally:
        os.close(fd)
    assert _digest(binary) == before
    # control: the file itself is writable, so the protection is the seal, not the file
    with open(binary, "r+b") as fh:
        fh.write(fh.read(1))
