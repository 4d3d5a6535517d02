"""Claim: on the CPU, the layout ``place_model`` picks (channels-last, but the small strided
1×1 convolutions oneDNN cannot run in it in the default layout: ``dau.models.layout``) is
faster than the default layout for the registered architectures at the sizes dau trains and
unlearns at.

Times a training step (forward, backward, SGD) of each model in both layouts, the two
alternating in one process so that both see the same machine, and prints the medians and the
ratio default / policy (> 1: the policy is faster), with the convolutions kept in the default
layout. ``python benchmarks/bench_layout.py [--quick] [--repeats N] [--threads N]``.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))

# (arch, width, channels, size, batch): Fashion-MNIST-sized ResNet-18s at a training batch and
# at a DAU forget pass (64 images and 10 noisy copies), CIFAR-sized models at batch 128
CASES = [
    ("resnet18", 0.125, 1, 28, 128), ("resnet18", 0.125, 1, 28, 704),
    ("resnet18", 0.25, 1, 28, 128), ("resnet18", 0.25, 1, 28, 704),
    ("resnet18", 1.0, 3, 32, 128), ("resnet50", 0.25, 3, 32, 128), ("vgg16_bn", 0.25, 3, 32, 128),
]
QUICK = [CASES[0], CASES[1], CASES[2]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="Only the small ResNet-18 cases.")
    p.add_argument("--repeats", type=int, default=7, help="Timed steps per layout and case.")
    p.add_argument("--threads", type=int, default=None, help="torch's CPU threads.")
    return p.parse_args(argv)


def train_step(model, optimizer, x, y) -> float:  # type: ignore[no-untyped-def]
    """Seconds of one forward, backward and SGD step."""
    import torch

    started = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    logits, _ = model(x)
    torch.nn.functional.cross_entropy(logits, y).backward()
    optimizer.step()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    import torch

    from dau.models import create_model, default_layout_convs, place_model

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, ATen CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    print(f"{'model':<28} {'batch':>5} {'default s':>10} {'policy s':>10} {'ratio':>6}  "
          "default-layout convs")
    ratios = []
    for arch, width, channels, size, batch in QUICK if args.quick else CASES:
        torch.manual_seed(0)
        base = create_model(arch, num_classes=10, in_channels=channels, width=width)
        models = {"default": copy.deepcopy(base), "policy": place_model(copy.deepcopy(base), "cpu")}
        optimizers = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
                      for k, m in models.items()}
        x = torch.rand(batch, channels, size, size)
        y = torch.randint(0, 10, (batch,))

        times: dict[str, list[float]] = {"default": [], "policy": []}
        for name in times:  # warm-up: oneDNN builds its primitives on the first call
            train_step(models[name], optimizers[name], x, y)
        for _ in range(args.repeats):
            for name in times:
                times[name].append(train_step(models[name], optimizers[name], x, y))
        default, policy = (statistics.median(times[k]) for k in ("default", "policy"))
        ratios.append(default / policy)
        label = f"{arch} w{width:g} {channels}x{size}x{size}"
        kept = ", ".join(default_layout_convs(base)) or "-"
        print(f"{label:<28} {batch:>5} {default:>10.4f} {policy:>10.4f} {default / policy:>5.2f}x  {kept}")
    print(f"geometric mean ratio {statistics.geometric_mean(ratios):.2f}x (> 1: the policy is faster)")


if __name__ == "__main__":
    main()
