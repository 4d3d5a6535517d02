"""Claims of the Rust data engine (``dau._native``), each measured side by side in one run:

1. Planning a split of 1.28 M labels over 1000 classes (ImageNet-sized), random 10 % and
   class-wise forgetting, is >= 10x faster than the clearest NumPy implementation of the
   same plan (per-class draws for validation, a draw from train for forget, sorted arrays
   of val/train/forget/retain; NumPy's own generator, so the draws differ but the work is
   the same). Both sides return the four index arrays.
2. Fingerprinting CIFAR-sized samples (3072 bytes) runs at >= 1 GB/s on this machine;
   printed for 1 thread and for all cores (scaling).
3. The sampler's share of a DAU step is < 1 %: drawing the step's forget, validation and
   retain batch indices (as DAU does: the first B of a seeded permutation of each set)
   against one forward + backward pass of a CIFAR ResNet-18 (width 0.5) on one batch,
   a lower bound of a DAU step's time.
4. Resolving a 10,000-item request against 1.28 M fingerprints takes < 100 ms (against a
   NumPy baseline: ``np.isin`` over 16-byte void rows).

Run ``python benchmarks/bench_data.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

from dau import _native


def timeit(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def numpy_plan(labels: np.ndarray, num_classes: int, forget: str, seed: int,
               val_fraction: float = 0.1) -> tuple[np.ndarray, ...]:
    """The clearest NumPy version of the plan (see the module docstring)."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels, minlength=num_classes)
    by_class = np.argsort(labels, kind="stable")
    is_val = np.zeros(len(labels), dtype=bool)
    start = 0
    for m in counts:
        members = by_class[start:start + m]
        is_val[rng.choice(members, int(np.floor(val_fraction * m)), replace=False)] = True
        start += m
    val = np.flatnonzero(is_val)
    train = np.flatnonzero(~is_val)
    kind, _, value = forget.partition(":")
    if kind == "random":
        k = int(np.floor(float(value.rstrip("%")) * len(train) / 100))
        forget_set = np.sort(rng.choice(train, k, replace=False))
    else:
        forget_set = train[labels[train] == int(value)]
    retain = np.setdiff1d(train, forget_set, assume_unique=True)
    return val, train, forget_set, retain


def rust_plan(labels: np.ndarray, num_classes: int, forget: str, seed: int) -> tuple[np.ndarray, ...]:
    plan = _native.plan_split(labels, num_classes, forget, seed)
    return plan.val, plan.train, plan.forget, plan.retain


def bench_planning(repeat: int) -> list[tuple[str, str, str, str]]:
    n, classes = 1_281_167, 1000
    labels = np.random.default_rng(0).integers(0, classes, n).astype(np.int64)
    rows = []
    for spec in ("random:10%", "class:7"):
        ours = rust_plan(labels, classes, spec, 1)
        theirs = numpy_plan(labels, classes, spec, 1)
        assert [len(a) for a in ours] == [len(a) for a in theirs], "plans of different sizes"
        t_rust = timeit(lambda s=spec: rust_plan(labels, classes, s, 1), repeat)
        t_numpy = timeit(lambda s=spec: numpy_plan(labels, classes, s, 1), repeat)
        rows.append((f"plan {spec}, 1.28M labels, 1000 classes", f"{t_rust * 1e3:.1f} ms",
                     f"{t_numpy * 1e3:.1f} ms (NumPy)", f"{t_numpy / t_rust:.1f}x (goal >= 10x)"))
    return rows


def bench_fingerprints(n: int, repeat: int) -> list[tuple[str, str, str, str]]:
    samples = np.random.default_rng(1).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    gb = samples.nbytes / 1e9
    cores = os.cpu_count() or 1
    t1 = timeit(lambda: _native.fingerprint_samples(samples, 1), repeat)
    tall = timeit(lambda: _native.fingerprint_samples(samples, cores), repeat)
    assert np.array_equal(_native.fingerprint_samples(samples, 1),
                          _native.fingerprint_samples(samples, cores))
    return [(f"fingerprint {n} CIFAR samples ({gb * 1e3:.0f} MB)",
             f"{gb / tall:.2f} GB/s ({cores} threads)", f"{gb / t1:.2f} GB/s (1 thread)",
             f"{t1 / tall:.2f}x scaling; goal >= 1 GB/s")]


def bench_sampler(repeat: int) -> list[tuple[str, str, str, str]]:
    import torch

    from dau.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=10, in_channels=3, mean=(0.5,) * 3,
                         std=(0.25,) * 3, width=0.5)
    batch = 128
    x, y = torch.rand(batch, 3, 32, 32), torch.randint(0, 10, (batch,))

    def step() -> None:
        model.zero_grad()
        logits = model(x)
        logits = logits[0] if isinstance(logits, tuple) else logits
        torch.nn.functional.cross_entropy(logits, y).backward()

    sizes = {"forget": 4_500, "val": 5_000, "retain": 40_500}  # CIFAR-10, random 10 %
    counter = iter(range(10**9))

    def draws() -> None:
        i = next(counter)
        for name, n in sizes.items():
            _native.permutation(n, 1, _native.set_stream(name, i))[:batch]

    t_step = timeit(step, max(3, repeat // 2))
    t_draw = timeit(draws, repeat * 20)
    return [("sampler share of a DAU step (B=128)", f"{t_draw * 1e6:.0f} us sampling",
             f"{t_step * 1e3:.0f} ms fwd+bwd ResNet-18 w0.5",
             f"{100 * t_draw / t_step:.3f} % (goal < 1 %)")]


def bench_resolve(repeat: int) -> list[tuple[str, str, str, str]]:
    n, m = 1_281_167, 10_000
    rng = np.random.default_rng(2)
    dataset = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    request = np.concatenate([dataset[rng.choice(n, m - 10, replace=False)],
                              rng.integers(0, 256, (10, 16), dtype=np.uint8)])
    items, _ = _native.resolve_fingerprints(dataset, request)
    assert len(np.unique(items)) == m - 10
    void = np.dtype((np.void, 16))
    t_rust = timeit(lambda: _native.resolve_fingerprints(dataset, request), repeat)
    t_numpy = timeit(lambda: np.flatnonzero(np.isin(dataset.view(void).ravel(),
                                                    request.view(void).ravel())), max(2, repeat // 3))
    return [("resolve 10,000-item request vs 1.28M fingerprints", f"{t_rust * 1e3:.1f} ms",
             f"{t_numpy * 1e3:.0f} ms (np.isin)", f"{t_numpy / t_rust:.0f}x; goal < 100 ms")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer repeats, fewer samples.")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"dau._native {_native.__version__}")
    rows = [("claim", "dau (Rust)", "baseline", "ratio / goal")]
    rows += bench_planning(repeat)
    rows += bench_fingerprints(50_000 if args.quick else 200_000, repeat)
    rows += bench_sampler(repeat)
    rows += bench_resolve(repeat)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for k, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
