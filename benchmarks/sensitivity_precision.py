"""Claim: under TF32 the finite-difference sensitivity (σ = 1e-3) is mostly rounding
noise, IEEE float32 keeps it meaningful, and the forward-mode JVP stays meaningful
under TF32.

On a small random-init ResNet-18 (CIFAR stem, train-mode BatchNorm) and one batch,
the sensitivity block of DAU's attacker input (``dau.methods.dau.attacker_input``,
same noise directions everywhere) is computed several ways and compared with the same
computation (fd or jvp) in float64 by relative error ``|s − s_ref| / |s_ref|``
(Frobenius norms):

* GPU: fd under TF32, fd in IEEE float32 (dau's policy for ``--sensitivity fd``),
  jvp under TF32, jvp in IEEE float32;
* CPU (no TF32 there): fd in float32 and jvp in float32.

The float64 fd reference uses the same σ, so the errors measure precision alone, not
the finite difference's distance from its σ → 0 limit (printed too: fd64 vs jvp64).

``python benchmarks/sensitivity_precision.py [--device cpu|cuda] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

from dau.methods.dau import NoiseStream, Probe, attacker_input
from dau.models import create_model
from dau.numerics import ieee_float32

CLASSES = 10


@torch.no_grad()
def sensitivity(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mode: str,
                sigma: float, copies: int) -> torch.Tensor:
    probe = Probe(copies=copies, sigma=sigma, sensitivity=mode, kernels="reference")
    rows, _ = attacker_input(model, x, y, num_classes=CLASSES, probe=probe, noise=NoiseStream(3))
    return rows[:, 2 * CLASSES:].double()


def tf32(enabled: bool) -> None:
    """Allow (or forbid) TF32 for cuDNN convs and CUDA matmuls (new API where present)."""
    mode = "tf32" if enabled else "ieee"
    if hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cudnn.conv, "fp32_precision"):
        torch.backends.cudnn.conv.fp32_precision = mode
        torch.backends.cuda.matmul.fp32_precision = mode
    else:
        torch.backends.cudnn.allow_tf32 = enabled
        torch.backends.cuda.matmul.allow_tf32 = enabled


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--sigma", type=float, default=1e-3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    device = args.device
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=CLASSES, width=args.width).to(device).train()
    x = torch.rand(args.batch, 3, 32, 32, device=device)
    y = torch.arange(args.batch, device=device) % CLASSES

    def run(mode: str, dtype: torch.dtype) -> torch.Tensor:
        return sensitivity(model.to(dtype), x.to(dtype), y, mode, args.sigma, args.copies)

    with ieee_float32():
        exact = {mode: run(mode, torch.float64) for mode in ("fd", "jvp")}
    cases: dict[str, torch.Tensor] = {}
    if device.startswith("cuda"):
        for allowed, name in ((True, "tf32"), (False, "ieee float32")):
            tf32(allowed)
            for mode in ("fd", "jvp"):
                cases[f"{mode} under {name}"] = run(mode, torch.float32)
        tf32(False)
    else:
        for mode in ("fd", "jvp"):
            cases[f"{mode} in float32"] = run(mode, torch.float32)

    def error(name: str, s: torch.Tensor) -> float:
        reference = exact[name.split()[0]]
        return float((s - reference).norm() / reference.norm())

    print(f"machine : {platform.machine()}, torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else ""))
    print(f"problem : ResNet-18 width {args.width}, 3x32x32, batch {args.batch}, "
          f"m = {args.copies}, sigma = {args.sigma}, train-mode BatchNorm")
    print("relative error vs the same computation in float64:")
    results = {name: error(name, s) for name, s in cases.items()}
    for name, value in results.items():
        print(f"  {name:<22} {value:.3e}")
    gap = float((exact["jvp"] - exact["fd"]).norm() / exact["fd"].norm())
    print(f"  (float64: fd vs its sigma -> 0 limit, jvp: {gap:.3e})")
    if device.startswith("cuda"):
        ratio = results["fd under tf32"] / max(results["fd under ieee float32"], 1e-30)
        print(f"fd: TF32 error / IEEE float32 error = {ratio:.1f}x; "
              f"jvp under TF32: {results['jvp under tf32']:.1e}")
    if args.json is not None:
        args.json.write_text(json.dumps({"device": device, "relative_error": results,
                                         "fd64_vs_jvp64": gap}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
