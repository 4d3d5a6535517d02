"""Claim: one fused masked SGD step beats torch's foreach SGD plus mask multiplies.

Over every parameter of a CIFAR ResNet-18 (random tensors of the real shapes:
3x3 stem with 64 channels, four stages of two BasicBlocks at 64/128/256/512
channels with 1x1 downsample convs, BatchNorm weights and biases, fc 512 -> 10),
with masks on the conv weights at several sparsities, one step (momentum 0.9,
weight decay 5e-4) is timed two ways, side by side in one run:

* fused: ``dau.ops.masked_sgd_`` (``torch.ops.dau.masked_sgd_``, one pass);
* baseline: ``torch._foreach_mul_(grads, masks)``, ``torch.optim.SGD(foreach=True).step()``
  and ``torch._foreach_mul_(params, masks)`` -- the usual way to keep pruned
  weights at zero with a stock optimizer.

Both give the same parameters (checked before timing). Prints the machine, the
versions and a table of median times with the ratio baseline / fused (> 1 means
fused is faster). Run ``python benchmarks/bench_masked_sgd.py [--quick]``.
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

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dau.ops
from _profile import write_profiles

LR, MOMENTUM, WEIGHT_DECAY = 0.05, 0.9, 5e-4


def resnet18_cifar_shapes(num_classes: int = 10, width: int = 64) -> list[tuple[int, ...]]:
    """Parameter shapes of a CIFAR ResNet-18, in ``model.parameters()`` order."""
    shapes: list[tuple[int, ...]] = [(width, 3, 3, 3), (width,), (width,)]
    in_channels = width
    for stage, channels in enumerate([width, 2 * width, 4 * width, 8 * width]):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            shapes += [(channels, in_channels, 3, 3), (channels,), (channels,)]
            shapes += [(channels, channels, 3, 3), (channels,), (channels,)]
            if stride != 1 or in_channels != channels:
                shapes += [(channels, in_channels, 1, 1), (channels,), (channels,)]
            in_channels = channels
    shapes += [(num_classes, in_channels), (num_classes,)]
    return shapes


class Problem:
    """Params, grads, momentum buffers and masks, twice (one copy per contender)."""

    def __init__(self, device: str, sparsity: float | None, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        shapes = resnet18_cifar_shapes()

        def rand(shape: tuple[int, ...]) -> Tensor:
            return torch.randn(shape, generator=gen).to(device)

        self.masks: list[Tensor | None] = []
        for shape in shapes:
            if sparsity is not None and len(shape) == 4:
                self.masks.append((torch.rand(shape, generator=gen) >= sparsity).to(device))
            else:
                self.masks.append(None)
        self.grads = [rand(s) for s in shapes]
        params = [rand(s) for s in shapes]
        for p, m in zip(params, self.masks, strict=True):
            if m is not None:
                p.mul_(m)  # pruned weights start at zero
        buffers = [rand(s) * 0.01 for s in shapes]
        for b, m in zip(buffers, self.masks, strict=True):
            if m is not None:
                b.mul_(m)

        # fused side
        self.fused_params = [p.clone() for p in params]
        self.fused_buffers = [b.clone() for b in buffers]
        self.mask_arg = self.masks if sparsity is not None else None

        # baseline side: a torch SGD over parameters with .grad set and
        # float masks (what _foreach_mul_ needs)
        self.base_params = [torch.nn.Parameter(p.clone()) for p in params]
        self.masked_idx = [i for i, m in enumerate(self.masks) if m is not None]
        self.float_masks = [self.masks[i].to(torch.float32) for i in self.masked_idx]  # type: ignore[union-attr]
        self.sgd = torch.optim.SGD(
            self.base_params, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, foreach=True
        )
        for p, g, b in zip(self.base_params, self.grads, buffers, strict=True):
            self.sgd.state[p]["momentum_buffer"] = b.clone()
            # Shared with the fused side: masking a grad is idempotent, and the
            # fused kernel ignores the grads of masked entries anyway.
            p.grad = g

    def fused_step(self) -> None:
        dau.ops.masked_sgd_(
            self.fused_params,
            self.grads,
            self.fused_buffers,
            self.mask_arg,
            lr=LR,
            momentum=MOMENTUM,
            weight_decay=WEIGHT_DECAY,
            first_step=False,
        )

    def baseline_step(self) -> None:
        if self.masked_idx:
            torch._foreach_mul_([self.base_params[i].grad for i in self.masked_idx], self.float_masks)  # type: ignore[misc]
        self.sgd.step()
        if self.masked_idx:
            with torch.no_grad():
                torch._foreach_mul_([self.base_params[i] for i in self.masked_idx], self.float_masks)

    def max_difference(self) -> float:
        return max(
            (a - b.detach()).abs().max().item()
            for a, b in zip(self.fused_params, self.base_params, strict=True)
        )


def timed(fn: Callable[[], None], device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(device: str, sparsity: float | None, warmup: int, repeats: int,
            profile: Path | None = None) -> dict[str, float]:
    check = Problem(device, sparsity)
    check.fused_step()
    check.baseline_step()
    difference = check.max_difference()

    problem = Problem(device, sparsity)
    for _ in range(warmup):
        problem.fused_step()
        problem.baseline_step()
    fused, baseline = [], []
    for _ in range(repeats):  # interleaved, so drifts of the machine hit both alike
        fused.append(timed(problem.fused_step, device))
        baseline.append(timed(problem.baseline_step, device))
    if profile is not None:
        write_profiles(profile, f"masked_sgd_ ({sparsity or 0:.0%} sparse)",
                       {"fused": problem.fused_step, "SGD+mask": problem.baseline_step}, device)
    return {
        "fused": statistics.median(fused),
        "baseline": statistics.median(baseline),
        "difference": difference,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a short run)")
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda", "all"],
        default="all",
        help="where to run: cpu, cuda, or all (cpu and, when present, cuda); default all",
    )
    args = parser.parse_args()
    warmup, repeats = (3, 15) if args.quick else (10, 60)
    devices = ["cpu"] if args.device in ("cpu", "all") else []
    if args.device == "cuda" or (args.device == "all" and torch.cuda.is_available()):
        devices.append("cuda")

    dau.ops.load()
    info = dau.ops.build_info()
    n_params = sum(torch.Size(s).numel() for s in resnet18_cifar_shapes())
    print(f"machine : {platform.machine()} {platform.processor() or ''} "
          f"{os.cpu_count()} cpus, torch threads {torch.get_num_threads()}")
    if "cuda" in devices:
        print(f"gpu     : {torch.cuda.get_device_name()}")
    print(f"versions: python {platform.python_version()}, torch {torch.__version__}, "
          f"op library built for torch {info.get('torch_version')} "
          f"({', '.join(info.get('backends', []))})")
    print(f"problem : ResNet-18 (CIFAR), {len(resnet18_cifar_shapes())} tensors, "
          f"{n_params / 1e6:.2f} M params, float32, momentum {MOMENTUM}, "
          f"weight decay {WEIGHT_DECAY}; median of {repeats} steps after {warmup} warm-up")
    print()
    header = (f"{'device':<6} {'masks':<14} {'fused ms':>9} {'SGD+mask ms':>12} "
              f"{'ratio':>7} {'max |diff|':>11}")
    print(header)
    print("-" * len(header))
    for device in devices:
        for label, sparsity in [("none (dense)", None), ("50 % sparse", 0.5), ("95 % sparse", 0.95)]:
            r = measure(device, sparsity, warmup, repeats)
            print(
                f"{device:<6} {label:<14} {r['fused'] * 1e3:>9.3f} {r['baseline'] * 1e3:>12.3f} "
                f"{r['baseline'] / r['fused']:>6.2f}x {r['difference']:>11.2e}"
            )
    print()
    print("ratio = baseline time / fused time (> 1: the fused kernel is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
