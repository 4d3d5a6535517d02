"""dau.allocator: the dau command serves large host allocations from glibc's heap."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="the policy is glibc's mallopt; elsewhere it does nothing")

# A 64 MiB tensor, above glibc's largest mmap threshold (32 MiB): the change of glibc's
# mmapped block count (mallinfo2's hblks) says whether it came from a fresh mmap.
PROBE = """
import ctypes
import torch
import dau.allocator as allocator

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
tuned = allocator.tune()
before = libc.mallinfo2().hblks
x = torch.empty(64 * 2**20, dtype=torch.uint8).fill_(1)
print(tuned, libc.mallinfo2().hblks - before, allocator.policy(), sep="|")
"""


def _probe(**env: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split("|")


def test_tuned_large_tensors_come_from_the_heap():
    tuned, mmapped, policy = _probe()
    assert tuned == "True" and policy.startswith("glibc heap")
    assert int(mmapped) == 0


def test_dau_malloc_system_keeps_glibc_defaults():
    tuned, mmapped, policy = _probe(DAU_MALLOC="system")
    assert tuned == "False" and policy == "system default (DAU_MALLOC=system)"
    assert int(mmapped) == 1  # the 64 MiB tensor is its own mmap


def test_the_command_line_applies_it():
    done = subprocess.run([sys.executable, "-m", "dau", "info", "--json"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["allocator"].startswith("glibc heap")
