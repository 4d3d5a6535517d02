"""Claim: the dau command's allocator policy (``dau.allocator``) speeds up DAU's large
passes on the CPU.

The same work is timed in worker processes, half of them with glibc's defaults
(``DAU_MALLOC=system``) and half with the policy the ``dau`` command applies, started
alternately so that both see the same machine:

* ``pretrain pass``: what an attacker pretraining iteration does to the defender: a
  member and a non-member batch, each with its m noisy copies in one no-grad pass
  (batch statistics);
* ``forget pass fwd+bwd``: the defender's forward and backward through a forget batch
  and its noisy copies, as in a DAU step;
* ``train step``: a plain training step (forward, backward, SGD) at batch 128, whose
  tensors stay under glibc's mmap threshold: the policy should change nothing there.

Prints the machine, the medians per side and the ratio default / tuned (> 1: the
policy is faster). ``python benchmarks/bench_allocator.py [--quick] [--threads N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="Batch 128, 2 workers a side.")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--copies", type=int, default=10)
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--workers", type=int, default=3, help="Worker processes per side.")
    p.add_argument("--repeats", type=int, default=3, help="Timed repeats per worker.")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker.")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.workers = 128, 2
    return args


def worker(args: argparse.Namespace) -> dict[str, object]:
    """Time the three workloads in this process (the policy as the environment says)."""
    import torch
    import torch.nn.functional as F

    from dau import allocator
    from dau.config import UnlearnConfig
    from dau.methods.dau import NoiseStream, Probe, attacker_input, frozen_bn_stats
    from dau.models import create_model, place_model

    allocator.tune()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=10, in_channels=1, width=args.width)
    place_model(model, "cpu")
    model.train()
    probe = Probe.of(UnlearnConfig(noise_copies=args.copies, adversarial_targets="forget"))
    noise = NoiseStream(1)
    x, y = torch.rand(args.batch, 1, 28, 28), torch.randint(0, 10, (args.batch,))
    xt, yt = torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,))
    sgd = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def pretrain() -> None:
        with torch.no_grad(), frozen_bn_stats(model):
            for _ in range(2):
                attacker_input(model, x, y, num_classes=10, probe=probe, noise=noise)

    def forget_pass() -> None:
        with frozen_bn_stats(model):
            rows, _ = attacker_input(model, x, y, num_classes=10, probe=probe, noise=noise)
            rows.sum().backward()
        model.zero_grad(set_to_none=True)

    def train_step() -> None:
        loss = F.cross_entropy(model(xt)[0], yt)
        sgd.zero_grad(set_to_none=True)
        loss.backward()
        sgd.step()

    times: dict[str, list[float]] = {}
    for name, fn in (("pretrain pass", pretrain), ("forget pass fwd+bwd", forget_pass),
                     ("train step", train_step)):
        fn()  # warm-up
        times[name] = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {"policy": allocator.policy(), "times": times}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    if platform.libc_ver()[0] != "glibc":
        print("the allocator policy is glibc's; nothing to measure on this platform")
        return 0
    import torch

    print(f"{platform.node()}: {os.cpu_count()} cores, torch {torch.__version__}, "
          f"batch {args.batch} x (1 + {args.copies}) images, ResNet-18 width {args.width}, "
          f"{args.threads or torch.get_num_threads()} threads")
    command = [sys.executable, __file__, "--worker", "--batch", str(args.batch), "--copies",
               str(args.copies), "--width", str(args.width), "--repeats", str(args.repeats)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    sides: dict[str, dict[str, list[float]]] = {"default": {}, "tuned": {}}
    policies = {}
    for _ in range(args.workers):
        for side in ("default", "tuned"):
            env = {**os.environ, "DAU_MALLOC": "system" if side == "default" else "dau"}
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            result = json.loads(done.stdout.splitlines()[-1])
            policies[side] = result["policy"]
            for name, times in result["times"].items():
                sides[side].setdefault(name, []).extend(times)
    print(f"default: {policies['default']}; tuned: {policies['tuned']}")
    print(f"{'workload':<22}{'default':>12}{'tuned':>12}{'ratio':>9}")
    for name in sides["default"]:
        base = statistics.median(sides["default"][name])
        ours = statistics.median(sides["tuned"][name])
        print(f"{name:<22}{base * 1e3:>10.0f}ms{ours * 1e3:>10.0f}ms{base / ours:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
