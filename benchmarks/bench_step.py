"""Claims: (3) a whole DAU step on dau's fused ops beats a faithful eager transcription of
the reference step (goal >= 1.3x on CPU), and a class-wise run, which skips the
adversarial branch after the stop, beats the reference's (goal >= 5x); (4) the peak
memory of one step, ours vs the reference's.

Same model (ResNet-18, CIFAR stem, --width), same data (random images, --size), same
math (spec §1.5: attacker Adam step on [logits | one-hot | sensitivity] of a forget and
a validation batch, m noisy copies at sigma = 1e-3, defender SGD step on retain CE +
1e-3 * cross-correlation + 0.9 * reversed attacker CE), measured side by side in one run:

* ours: ``dau.methods.dau.DauStep`` with ``--kernels fused`` (and ``reference``, for
  the ops' share) on the defender as dau places it (``dau.models.place_model``:
  channels-last weights on the CPU; a row without that shows its share): one defender
  pass per batch and its noisy copies, batches drawn
  from seeded permutations on the device (``draw_batch`` + ``iterate_batches``);
* reference: spec §1.5 transcribed: a new shuffled ``DataLoader`` iterator over the
  forget and the validation sets every step (first batch), a persistent shuffled
  retain loader with per-sample crop/flip, separate clean and noisy passes
  (``x.repeat`` + ``torch.randn``), BatchNorm statistics updated by every pass, and
  after a class-wise stop the adversarial branch still computed and multiplied by 0.

Precision: both run a step that builds the attacker's input in IEEE float32, as
``dau.numerics`` does for ``--sensitivity fd`` (TF32 off), so the ratio measures the
implementation, not the precision. For information, ours is also timed with
``--sensitivity jvp`` and, on CUDA, the reference with torch's defaults (cuDNN
convolutions in TF32 on Ampere+, as the reference code runs).

Allocator: ``dau`` commands serve large host allocations from glibc's heap
(``dau.allocator``); the reference scripts run with glibc's defaults. Both sides are
timed with glibc's defaults (the goal's row), and on the CPU again side by side in a
subprocess under dau's policy (what a ``dau`` command runs with; the reference maps and
faults in more large tensors a step than ours, so the policy can move the ratio either way).

Memory (4): on CUDA ``torch.cuda.max_memory_allocated`` over one step (after a warm-up
step); on the CPU the growth of the peak resident set size (``ru_maxrss``) over one
step in a fresh subprocess per contender (``VmHWM`` after the step minus before it;
coarse: it includes allocator caching and freed-but-resident memory).

``python benchmarks/bench_step.py [--quick] [--device cpu|cuda] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _profile import write_profiles
from dau.config import UnlearnConfig
from dau.data import ImageData
from dau.data.loaders import iterate_batches
from dau.methods.dau import FORGET_SALT, VAL_SALT, DauStep, NoiseStream, draw_batch
from dau.models import create_model, place_model
from dau.models.attacker import create_attacker
from dau.numerics import ieee_float32

CLASSES = 10


class Setup:
    """Model, attacker, optimizers and uint8 data of one contender (same seed = same start)."""

    def __init__(self, args: argparse.Namespace, device: str) -> None:
        torch.manual_seed(0)
        self.args, self.device = args, device
        shape = (args.channels, args.size, args.size)
        self.defender = create_model("resnet18", num_classes=CLASSES, in_channels=args.channels,
                                     width=args.width).to(device).train()
        self.attacker = create_attacker("transformer", num_classes=CLASSES).to(device).train()
        self.defender_opt = torch.optim.SGD(self.defender.parameters(), lr=0.01, momentum=0.9,
                                            weight_decay=5e-4)
        self.attacker_opt = torch.optim.Adam(self.attacker.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(1)
        sizes = {"retain": 4 * args.batch, "forget": 2 * args.batch, "val": 2 * args.batch}
        self.data = {
            name: ImageData(torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=gen),
                            torch.randint(0, CLASSES, (n,), generator=gen))
            for name, n in sizes.items()
        }


class Info:
    crop_padding, hflip = 4, True


# ---------------------------------------------------------------------------- ours ---


def ours(setup: Setup, kernels: str, sensitivity: str = "fd", place: bool = True,
         targets: str = "both") -> Callable[[int, float], None]:
    args, device = setup.args, setup.device
    if place:  # the layout dau runs the defender in (channels-last on the CPU)
        place_model(setup.defender, device)
    config = UnlearnConfig(kernels=kernels, noise_copies=args.copies, batch_size=args.batch,
                           lr=0.01, device=device, sensitivity=sensitivity,
                           adversarial_targets=targets)
    step = DauStep(defender=setup.defender, attacker=setup.attacker,
                   defender_opt=setup.defender_opt, attacker_opt=setup.attacker_opt,
                   config=config, num_classes=CLASSES, noise=NoiseStream(seed=7))
    data = {k: ImageData(v.images.to(device), v.labels.to(device)) for k, v in setup.data.items()}
    gen = torch.Generator(device=device).manual_seed(3)
    retain = _endless(lambda epoch: iterate_batches(
        data["retain"], torch.randperm(len(data["retain"])), args.batch, augment=True,
        info=Info(), device=device, generator=gen))  # type: ignore[arg-type]

    def one(i: int, beta: float) -> None:
        pair = None
        if beta > 0:
            pair = tuple(
                next(iterate_batches(data[name], draw_batch(len(data[name]), args.batch, 1, salt, i),
                                     args.batch, augment=False, device=device))
                for name, salt in (("forget", FORGET_SALT), ("val", VAL_SALT)))
        step(next(retain), pair, beta)  # type: ignore[arg-type]

    return one


def _endless(make: Callable[[int], Iterator[Any]]) -> Iterator[Any]:
    epoch = 0
    while True:
        yield from make(epoch)
        epoch += 1


# ---------------------------------------------------------------------- reference ---


class Images(Dataset):  # type: ignore[type-arg]
    """A torchvision-style dataset: one sample at a time, optional crop(4)+flip."""

    def __init__(self, data: ImageData, augment: bool) -> None:
        self.data, self.augment = data, augment

    def __len__(self) -> int:
        return len(self.data.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.data.images[i].float() / 255
        if self.augment:
            h, w = x.shape[1:]
            padded = F.pad(x, (4, 4, 4, 4))
            top, left = torch.randint(0, 9, (2,)).tolist()
            x = padded[:, top:top + h, left:left + w]
            if torch.rand(()) < 0.5:
                x = x.flip(2)
        return x, self.data.labels[i]


def reference(setup: Setup, ieee: bool = True) -> Callable[[int, float], None]:
    args, device = setup.args, setup.device
    defender, attacker = setup.defender, setup.attacker
    forget, val = Images(setup.data["forget"], False), Images(setup.data["val"], False)
    retain_loader = DataLoader(Images(setup.data["retain"], True), batch_size=args.batch, shuffle=True)
    retain = _endless(lambda epoch: iter(retain_loader))

    def sensitivity(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        tiled = x.repeat(args.copies, 1, 1, 1)
        noisy, _ = defender(tiled + 1e-3 * torch.randn_like(tiled))
        return (noisy.view(args.copies, x.shape[0], -1) - z).abs().mean(0) / 1e-3

    def standardise(h: torch.Tensor) -> torch.Tensor:
        return (h - h.mean(0)) / h.std(0)

    def one(i: int, beta: float) -> None:
        # The same precision as ours (dau.numerics): IEEE float32 for a step that builds
        # the attacker's input; ieee=False keeps torch's defaults (cuDNN convolutions in
        # TF32 on Ampere+), which is what the reference code runs with.
        with ieee_float32(ieee):
            step(beta)

    def step(beta: float) -> None:
        x_f, y_f = (t.to(device) for t in next(iter(DataLoader(forget, args.batch, shuffle=True))))
        x_v, y_v = (t.to(device) for t in next(iter(DataLoader(val, args.batch, shuffle=True))))
        z_f, h_f = defender(x_f)
        s_f = sensitivity(x_f, z_f)
        z_v, h_v = defender(x_v)
        s_v = sensitivity(x_v, z_v)
        rows = torch.cat([torch.cat([z_f, F.one_hot(y_f, CLASSES), s_f], 1),
                          torch.cat([z_v, F.one_hot(y_v, CLASSES), s_v], 1)])
        labels = torch.cat([torch.ones_like(y_f), torch.zeros_like(y_v)])
        loss_a = F.cross_entropy(attacker(rows.detach()), labels)
        setup.attacker_opt.zero_grad()
        loss_a.backward()
        setup.attacker_opt.step()
        x_r, y_r = (t.to(device) for t in next(retain))
        loss_r = F.cross_entropy(defender(x_r)[0], y_r)
        loss_adv = F.cross_entropy(attacker(rows), 1 - labels)
        corr = standardise(h_v).T @ standardise(h_f) / h_f.shape[0]
        diag = torch.diagonal(corr)
        loss_bt = (diag - 1).pow(2).sum() + 5e-3 * (corr.pow(2).sum() - diag.pow(2).sum())
        loss = loss_r + beta * (1e-3 * loss_bt + 0.9 * loss_adv)
        setup.defender_opt.zero_grad()
        loss.backward()
        setup.defender_opt.step()

    return one


CONTENDERS: dict[str, Callable[[Setup], Callable[[int, float], None]]] = {
    "fused": lambda s: ours(s, "fused"),
    "ops-reference": lambda s: ours(s, "reference"),
    "fused-jvp": lambda s: ours(s, "fused", "jvp"),
    "fused-default-layout": lambda s: ours(s, "fused", place=False),
    "fused-forget-targets": lambda s: ours(s, "fused", targets="forget"),
    "reference": reference,
    "reference-tf32": lambda s: reference(s, ieee=False),
}


def contenders(device: str) -> list[str]:
    """The contenders worth timing on ``device`` (TF32 only exists on CUDA)."""
    return [name for name in CONTENDERS if device.startswith("cuda") or name != "reference-tf32"]


# ------------------------------------------------------------------------ measure ---


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(args: argparse.Namespace, device: str,
               names: list[str] | None = None) -> dict[str, float]:
    """Median seconds per adversarial step of each contender (``names``: all), interleaved."""
    steps = {name: CONTENDERS[name](Setup(args, device)) for name in names or contenders(device)}
    for one in steps.values():
        one(0, 1.0)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(1, args.repeats + 1):
        for name, one in steps.items():
            sync(device)
            start = time.perf_counter()
            one(i, 1.0)
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def time_classwise(args: argparse.Namespace, device: str) -> dict[str, float]:
    """Seconds of a class-wise run of --run-steps steps with the stop after --stop."""
    result = {}
    for name in ("fused", "reference"):
        one = CONTENDERS[name](Setup(args, device))
        sync(device)
        start = time.perf_counter()
        for i in range(1, args.run_steps + 1):
            one(i, 1.0 if i <= args.stop else 0.0)
        sync(device)
        result[name] = time.perf_counter() - start
    return result


def peak_memory(args: argparse.Namespace, device: str, name: str) -> float:
    """Bytes: CUDA max_memory_allocated over one step; CPU ru_maxrss growth (subprocess)."""
    if device.startswith("cuda"):
        one = CONTENDERS[name](Setup(args, device))
        one(0, 1.0)
        sync(device)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        one(1, 1.0)
        sync(device)
        return float(torch.cuda.max_memory_allocated() - base)
    cmd = [sys.executable, __file__, "--memory-child", name, *sys.argv[1:]]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def time_steps_tuned(args: argparse.Namespace) -> dict[str, float]:
    """``time_steps`` of ours and the reference in a subprocess under dau's allocator policy.

    ``dau.allocator.tune`` (what the ``dau`` command sets) changes glibc for the whole
    process and cannot be undone, so the main process times both sides with glibc's
    defaults and this child times them again, side by side, with the policy.
    """
    cmd = [sys.executable, __file__, "--allocator-child", *sys.argv[1:]]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    times: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return times


def allocator_child(args: argparse.Namespace) -> None:
    from dau.allocator import tune

    if not tune():  # not glibc, or DAU_MALLOC=system: no rows
        print("{}")
        return
    import dau.ops

    dau.ops.load()
    print(json.dumps(time_steps(args, "cpu", ["fused", "reference"])))


def peak_rss() -> int:
    """Bytes: this process's peak resident set size.

    Linux: ``VmHWM`` of /proc/self/status, the peak of this process image (``ru_maxrss``
    keeps the parent's peak across fork + exec); elsewhere ``ru_maxrss``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def memory_child(args: argparse.Namespace) -> None:
    one = CONTENDERS[args.memory_child](Setup(args, "cpu"))
    before = peak_rss()
    one(1, 1.0)
    print(peak_rss() - before)


def adversarial_steps(one: Callable[[int, float], None]) -> Callable[[], None]:
    """A closure running the next adversarial step of ``one`` on each call."""
    steps = iter(range(1, 1_000_000))
    return lambda: one(next(steps), 1.0)


def verdict(ratio: float, goal: float | None) -> str:
    if goal is None:
        return "(no goal)"
    return f"goal >= {goal:g}x {'met' if ratio >= goal else 'MISSED'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small problem: batch 32, width 0.125, 28x28x1, 2 repeats")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 256)")
    parser.add_argument("--copies", type=int, default=10, help="noisy copies m (default 10)")
    parser.add_argument("--width", type=float, default=None, help="ResNet-18 width (default 0.25)")
    parser.add_argument("--size", type=int, default=None, help="image side (default 32)")
    parser.add_argument("--channels", type=int, default=None, help="image channels (default 3)")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps (default 10)")
    parser.add_argument("--profile", type=Path, default=None, metavar="FILE",
                        help="also write torch.profiler tables of one adversarial step of "
                             "ours and of the reference to FILE")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--allocator-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quick = dict(batch=32, width=0.125, size=28, channels=1, repeats=2)
    full = dict(batch=256, width=0.25, size=32, channels=3, repeats=10)
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    # class-wise: stop after 1/16 of the steps, as CIFAR-10's 30 of 477
    args.run_steps, args.stop = (16, 1) if args.quick else (48, 3)
    if args.memory_child:
        memory_child(args)
        return 0
    if args.allocator_child:
        allocator_child(args)
        return 0
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 1
    import dau.ops

    dau.ops.load()
    print(f"machine : {platform.machine()} {os.cpu_count()} cpus, torch threads "
          f"{torch.get_num_threads()}" + (f", gpu {torch.cuda.get_device_name()}"
                                          if device.startswith("cuda") else ""))
    print(f"versions: python {platform.python_version()}, torch {torch.__version__}")
    print(f"problem : ResNet-18 width {args.width}, {args.channels}x{args.size}x{args.size}, "
          f"batch {args.batch}, m = {args.copies}, device {device}")
    steps = time_steps(args, device)
    tuned = time_steps_tuned(args) if device == "cpu" else {}
    run = time_classwise(args, device)
    memory = {name: peak_memory(args, device, name) for name in contenders(device)}
    rows = [
        ("(3) DAU step, s", steps["fused"], steps["reference"], 1.3 if device == "cpu" else None),
        ("(3) DAU step, --kernels reference, s", steps["ops-reference"], steps["reference"], None),
        ("(3) DAU step, --sensitivity jvp, s", steps["fused-jvp"], steps["reference"], None),
        ("(3) DAU step, default memory layout, s", steps["fused-default-layout"],
         steps["reference"], None),
        ("(3) DAU step, --adversarial-targets forget, s", steps["fused-forget-targets"],
         steps["reference"], None),
        *([("(3) DAU step, both under dau's allocator policy, s", tuned["fused"],
            tuned["reference"], None)] if tuned else []),
        *([("(3) DAU step vs reference in TF32, s", steps["fused"], steps["reference-tf32"], None),
           ("(3) --sensitivity jvp vs reference in TF32, s", steps["fused-jvp"],
            steps["reference-tf32"], None)] if "reference-tf32" in steps else []),
        (f"(3) class-wise run ({args.run_steps} steps, stop {args.stop}), s", run["fused"],
         run["reference"], 5.0),
        ("(4) peak memory of a step, MiB", memory["fused"] / 2**20, memory["reference"] / 2**20,
         None),
        ("(4) peak memory, --kernels reference, MiB", memory["ops-reference"] / 2**20,
         memory["reference"] / 2**20, None),
        ("(4) peak memory, --adversarial-targets forget, MiB",
         memory["fused-forget-targets"] / 2**20, memory["reference"] / 2**20, None),
    ]
    print()
    width = max(len(row[0]) for row in rows)
    print(f"{'claim':<{width}} {'ours':>10} {'reference':>10} {'ratio':>7}")
    results = []
    for label, mine, theirs, goal in rows:
        ratio = theirs / mine if mine > 0 else float("inf")
        print(f"{label:<{width}} {mine:>10.3f} {theirs:>10.3f} {ratio:>6.2f}x {verdict(ratio, goal)}")
        results.append({"claim": label, "ours": mine, "reference": theirs, "ratio": ratio,
                        "goal": goal, "met": None if goal is None else ratio >= goal})
    print("ratio = reference / ours (> 1: ours is faster or smaller)")
    if args.profile is not None:
        args.profile.unlink(missing_ok=True)
        for name in ("fused", "reference"):
            write_profiles(args.profile, "(3) DAU step",
                           {name: adversarial_steps(CONTENDERS[name](Setup(args, device)))},
                           device)
        print(f"profiles in {args.profile}")
    if args.json is not None:
        args.json.write_text(json.dumps({"device": device, "args": {
            k: v for k, v in vars(args).items() if k != "json"}, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
