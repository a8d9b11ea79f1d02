"""runner/syscalls: the raw system call numbers match each architecture's kernel ABI.

pivot_root was hard-coded with x86_64's number; on arm64 that number (155) is
``getpgid``.  The table is checked against the kernel's own headers: x86_64's
``asm/unistd_64.h`` and the generic table (``asm-generic/unistd.h``) that aarch64 and
riscv64 use.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner import syscalls

HEADERS = {
    "x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    "aarch64": Path("/usr/include/asm-generic/unistd.h"),
    "riscv64": Path("/usr/include/asm-generic/unistd.h"),
}


def _numbers(header: Path) -> dict[str, int]:
    text = header.read_text()
    return {name: int(num) for name, num in re.findall(r"#define __NR(?:3264)?_(\w+)\s+(\d+)\b", text)}


@pytest.mark.parametrize("machine", sorted(HEADERS))
def test_table_matches_the_kernel_headers(machine):
    header = HEADERS[machine]
    if not header.exists():
        pytest.fail(f"{header} missing: install linux-libc-dev (scripts/setup.sh)")
    kernel = _numbers(header)
    for name, number in syscalls.syscall_numbers(machine).items():
        assert kernel[name] == number, (machine, name)


def test_every_call_has_a_number_on_every_architecture():
    names = {frozenset(table) for table in syscalls.SYSCALL_NUMBERS.values()}
    assert len(names) == 1 and {"pivot_root", "close_range"} <= next(iter(names))


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(OSError, match="unsupported architecture 'mips'"):
        syscalls.syscall_numbers("mips")
