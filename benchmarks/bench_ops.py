"""Claim: each fused dau op beats its pure-PyTorch counterpart at DAU sizes
(goal: >= 1.5x on CPU, >= 3x on a GPU), forward and backward together.

Cases, each timed side by side in one run (interleaved, median):

* ``noisy_replicate`` of a [256, 3, 32, 32] batch with m = 10 copies, vs its
  reference (the same counter-based noise in PyTorch) and vs the stock way
  (``x.repeat`` + ``torch.randn``, different noise, same work otherwise);
* ``sensitivity_features`` with B = 256, m = 10, C = 10 and 100;
* ``cross_correlation_loss`` of two [256, 512] feature matrices;
* ``masked_sgd_`` over a CIFAR ResNet-18 at 50 % sparsity vs
  ``torch.optim.SGD(foreach=True)`` + mask multiplies (the problem of
  ``bench_masked_sgd.py``).

Every differentiable case runs forward + backward (``torch.autograd.grad``
with a fixed output gradient); outputs and gradients of the two sides are
compared before timing (``max |diff|``). Prints the machine, versions and a
table of median milliseconds with ratio = other / fused (> 1: fused is
faster) and whether the goal is met. Run
``python benchmarks/bench_ops.py [--quick] [--device cpu|cuda] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
sys.path.insert(0, str(HERE))

import bench_masked_sgd  # noqa: E402  (after the sys.path change)
import dau.ops  # noqa: E402
from _profile import write_profiles  # noqa: E402

GOALS = {"cpu": 1.5, "cuda": 3.0}
BATCH, COPIES, SIGMA = 256, 10, 0.1


@dataclass
class Result:
    op: str
    size: str
    baseline: str
    device: str
    fused_ms: float
    baseline_ms: float
    ratio: float
    goal: float
    met: bool
    max_diff: float | None


timed = bench_masked_sgd.timed


def side_by_side(
    fused: Callable[[], object], baseline: Callable[[], object], device: str, warmup: int,
    repeats: int, profile: tuple[Path, str] | None = None,
) -> tuple[float, float]:
    """Median seconds of each, measured alternately so machine drift hits both alike.

    ``profile=(FILE, title)`` also appends the profiler tables of both to FILE.
    """
    if profile is not None:
        write_profiles(profile[0], profile[1], {"fused": fused, "other": baseline}, device)
    for _ in range(warmup):
        fused()
        baseline()
    times_f, times_b = [], []
    for _ in range(repeats):
        times_f.append(timed(fused, device))
        times_b.append(timed(baseline, device))
    return statistics.median(times_f), statistics.median(times_b)


def forward_backward(
    op: Callable[..., Tensor], inputs: Sequence[Tensor], args: tuple[object, ...],
    grad_out: Tensor | None = None,
) -> Callable[[], tuple[Tensor, ...]]:
    """A closure running op(*inputs, *args) and the gradients w.r.t. ``inputs``."""

    def run() -> tuple[Tensor, ...]:
        out = op(*inputs, *args)
        grad = grad_out if grad_out is not None else torch.ones_like(out)
        return (out, *torch.autograd.grad(out, list(inputs), grad))

    return run


def max_difference(a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
    return max((x.double() - y.double()).abs().max().item() for x, y in zip(a, b, strict=True))


def leaf(t: Tensor) -> Tensor:
    return t.detach().clone().requires_grad_()


def bench_noisy_replicate(device: str, warmup: int, repeats: int,
            profile: Path | None = None) -> list[Result]:
    gen = torch.Generator().manual_seed(0)
    x = leaf(torch.rand(BATCH, 3, 32, 32, generator=gen).to(device))
    grad = torch.randn((COPIES + 1) * BATCH, 3, 32, 32, generator=gen).to(device)
    args = (COPIES, SIGMA, 1234, 0)

    def fused_op(t: Tensor, *a: object) -> Tensor:
        return dau.ops.noisy_replicate(t, *a)  # type: ignore[arg-type]

    def reference_op(t: Tensor, *a: object) -> Tensor:
        return dau.ops.noisy_replicate(t, *a, kernels="reference")  # type: ignore[arg-type]

    def stock_op(t: Tensor, copies: int, sigma: float, *_: object) -> Tensor:
        tiled = t.repeat(copies, 1, 1, 1)
        return torch.cat([t, tiled + sigma * torch.randn_like(tiled)])

    fused = forward_backward(fused_op, [x], args, grad)
    reference = forward_backward(reference_op, [x], args, grad)
    stock = forward_backward(stock_op, [x], args, grad)
    diff = max_difference(fused(), reference())
    size = f"[{BATCH},3,32,32] m={COPIES}"
    out = []
    # The reference hashes in int64 tensor ops: slow, so fewer repeats.
    for name, other, reps, d in [
        ("reference", reference, max(3, repeats // 5), diff),
        ("x.repeat + randn", stock, repeats, None),
    ]:
        f, b = side_by_side(fused, other, device, min(warmup, 2), reps,
                            profile and (profile, f"noisy_replicate {size} vs {name}"))
        out.append(make_result("noisy_replicate", size, name, device, f, b, d))
    return out


def bench_sensitivity_features(device: str, warmup: int, repeats: int,
            profile: Path | None = None) -> list[Result]:
    out = []
    for classes in (10, 100):
        gen = torch.Generator().manual_seed(classes)
        logits = leaf(torch.randn(BATCH, classes, generator=gen).to(device))
        noisy = leaf(torch.randn(COPIES * BATCH, classes, generator=gen).to(device))
        labels = torch.randint(0, classes, (BATCH,), generator=gen).to(device)
        grad = torch.randn(BATCH, 3 * classes, generator=gen).to(device)
        args = (labels, SIGMA, classes)

        def fused_op(a: Tensor, b: Tensor, *rest: object) -> Tensor:
            return dau.ops.sensitivity_features(a, b, *rest)  # type: ignore[arg-type]

        def reference_op(a: Tensor, b: Tensor, *rest: object) -> Tensor:
            return dau.ops.sensitivity_features(a, b, *rest, kernels="reference")  # type: ignore[arg-type]

        fused = forward_backward(fused_op, [logits, noisy], args, grad)
        reference = forward_backward(reference_op, [logits, noisy], args, grad)
        diff = max_difference(fused(), reference())
        size = f"B={BATCH} m={COPIES} C={classes}"
        f, b = side_by_side(fused, reference, device, warmup, repeats,
                            profile and (profile, f"sensitivity_features {size}"))
        out.append(make_result("sensitivity_features", size,
                               "reference", device, f, b, diff))
    return out


def bench_cross_correlation_loss(device: str, warmup: int, repeats: int,
            profile: Path | None = None) -> list[Result]:
    gen = torch.Generator().manual_seed(1)
    val = leaf(torch.randn(BATCH, 512, generator=gen).to(device))
    forget = leaf(torch.randn(BATCH, 512, generator=gen).to(device))
    args = (0.005, 1e-5)

    def fused_op(a: Tensor, b: Tensor, *rest: object) -> Tensor:
        return dau.ops.cross_correlation_loss(a, b, *rest)  # type: ignore[arg-type]

    def reference_op(a: Tensor, b: Tensor, *rest: object) -> Tensor:
        return dau.ops.cross_correlation_loss(a, b, *rest, kernels="reference")  # type: ignore[arg-type]

    fused = forward_backward(fused_op, [val, forget], args)
    reference = forward_backward(reference_op, [val, forget], args)
    diff = max_difference(fused(), reference())
    f, b = side_by_side(fused, reference, device, warmup, repeats,
                        profile and (profile, "cross_correlation_loss"))
    return [make_result("cross_correlation_loss", f"2 x [{BATCH},512]", "reference", device, f,
                        b, diff)]


def bench_masked_sgd_step(device: str, warmup: int, repeats: int,
            profile: Path | None = None) -> list[Result]:
    r = bench_masked_sgd.measure(device, 0.5, warmup, repeats, profile)
    return [make_result("masked_sgd_", "ResNet-18, 50 % sparse", "SGD(foreach)+mask", device,
                        r["fused"], r["baseline"], r["difference"])]


def make_result(op: str, size: str, baseline: str, device: str, fused_s: float,
                baseline_s: float, diff: float | None) -> Result:
    ratio = baseline_s / fused_s
    goal = GOALS[device]
    return Result(op, size, baseline, device, fused_s * 1e3, baseline_s * 1e3, ratio, goal,
                  ratio >= goal, diff)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a short run)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where to run (default cpu)")
    parser.add_argument("--json", type=Path, metavar="OUT",
                        help="also write the results (and the machine) as JSON to OUT")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="also write torch.profiler tables of both sides of every case "
                             "to FILE (where the time goes)")
    args = parser.parse_args()
    if args.profile:
        args.profile.unlink(missing_ok=True)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device")
    warmup, repeats = (2, 10) if args.quick else (10, 50)
    device = args.device

    dau.ops.load()
    info = dau.ops.build_info()
    machine = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "op_library_torch": info.get("torch_version"),
        "backends": info.get("backends"),
    }
    print(f"machine : {machine['machine']}, {machine['cpus']} cpus, "
          f"torch threads {machine['torch_threads']}")
    if machine["gpu"]:
        print(f"gpu     : {machine['gpu']}")
    print(f"versions: python {machine['python']}, torch {machine['torch']}, op library built "
          f"for torch {machine['op_library_torch']} ({', '.join(machine['backends'] or [])})")
    print(f"timing  : forward + backward, median of {repeats} after {warmup} warm-up "
          "(noisy_replicate vs its reference: fewer)")
    print()

    results: list[Result] = []
    header = (f"{'op':<23} {'size':<24} {'vs':<18} {'fused ms':>9} {'other ms':>9} "
              f"{'ratio':>7} {'goal':>5}  {'':<6} {'max |diff|':>10}")
    print(header)
    print("-" * len(header))
    for bench in (bench_noisy_replicate, bench_sensitivity_features,
                  bench_cross_correlation_loss, bench_masked_sgd_step):
        for r in bench(device, warmup, repeats, args.profile):
            results.append(r)
            diff = "-" if r.max_diff is None else f"{r.max_diff:.2e}"
            print(f"{r.op:<23} {r.size:<24} {r.baseline:<18} {r.fused_ms:>9.3f} "
                  f"{r.baseline_ms:>9.3f} {r.ratio:>6.2f}x {r.goal:>4.1f}x  "
                  f"{'met' if r.met else 'MISSED':<6} {diff:>10}", flush=True)
    print()
    print("ratio = other time / fused time (> 1: the fused op is faster); "
          f"goal on {device}: >= {GOALS[device]}x")
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": machine, "results": [asdict(r) for r in results]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
