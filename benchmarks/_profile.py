"""Where the time goes: a ``torch.profiler`` table of a benchmark's contender.

The benchmarks print ratios; for a ratio that misses its goal they can also write
the profile of both sides (``--profile FILE``), so the miss comes with the kernels,
copies and host-side calls that make it up.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile


def profile_table(fn: Callable[[], object], device: str, iters: int = 5, rows: int = 18) -> str:
    """The profiler's table of ``iters`` calls of ``fn`` (after one warm-up call).

    Sorted by self device time on CUDA (what the GPU spends in each kernel), by self
    CPU time otherwise; the CPU columns on CUDA show the host-side cost (dispatch,
    autograd, Python wrappers) that small ops are bound by.
    """
    cuda = device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    fn()
    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(iters):
            fn()
        sync()
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    table: str = prof.key_averages().table(sort_by=sort, row_limit=rows)
    return f"{iters} calls, sorted by {sort}\n{table}"


def write_profiles(path: Path, title: str, sides: dict[str, Callable[[], object]],
                   device: str) -> None:
    """Appends the profile table of each side of one benchmark case to ``path``."""
    with path.open("a") as out:
        for side, fn in sides.items():
            out.write(f"===== {title}: {side} ({device})\n{profile_table(fn, device)}\n\n")
