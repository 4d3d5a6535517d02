"""Forward + backward of a registered architecture as ``place_model`` lays it out on the CPU,
against the same model in the default layout: batch sizes FIRST..LAST, train and eval mode.

    python layout_sweep.py ARCH WIDTH IN_CHANNELS SIZE [FIRST LAST]

Exit 0 when every output and gradient matches; 1 with the mismatches listed; a crash in a
kernel ends it by a signal (run it in a subprocess).
"""

import copy
import sys

import torch

from dau.models import create_model, place_model

TOLERANCE = 0.25


def max_error(ours: list[torch.Tensor], ref: list[torch.Tensor]) -> float:
    """The largest relative distance ``‖a − b‖ / ‖b‖`` of a tensor pair; a tensor that is zero
    but for rounding (the bias before a BatchNorm) is measured against 1 % of the largest.

    The two layouts round differently, and where a ReLU's input is within rounding of 0 one
    passes that element's gradient and the other blocks it; in train mode BatchNorm over a
    batch of 2 or 3 small images amplifies that. Measured between the default layout and
    float64: up to 0.06 at batch 2. A kernel that computes a wrong gradient is off by the order
    of the gradient itself (1 and more)."""
    floor = 1e-2 * max(float(r.norm()) for r in ref)
    return max(float((a - b).norm()) / max(float(b.norm()), floor, 1e-12)
               for a, b in zip(ours, ref, strict=True))


def main() -> None:
    arch, width, channels, size = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    first, last = (int(sys.argv[5]), int(sys.argv[6])) if len(sys.argv) > 6 else (1, 33)
    torch.manual_seed(0)
    base = create_model(arch, num_classes=10, in_channels=channels, width=width)
    placed = place_model(copy.deepcopy(base), "cpu")
    reference = copy.deepcopy(base)
    wrong = []
    for mode in ("train", "eval"):
        placed.train(mode == "train")
        reference.train(mode == "train")
        for batch in range(first, last + 1):
            x = torch.rand(batch, channels, size, size)
            results = []
            for model in (placed, reference):
                model.zero_grad(set_to_none=True)
                try:
                    logits, features = model(x)
                except ValueError as exc:  # BatchNorm refusing one value per channel, in both
                    results.append(str(exc))
                    continue
                (logits.square().mean() + features.mean()).backward()
                results.append((logits.detach(), [p.grad for p in model.parameters()]))
            ours, ref = results
            if isinstance(ours, str) or isinstance(ref, str):
                error = 0.0 if ours == ref else float("inf")
            else:
                error = max(max_error([ours[0]], [ref[0]]), max_error(ours[1], ref[1]))
            if not error <= TOLERANCE:
                wrong.append(f"{mode} batch {batch}: max relative error {error:.3g}")
            print(f"{mode} batch {batch}: {error:.2g}", flush=True)
    print("\n".join(wrong) if wrong else "every output and gradient matches the default layout")
    raise SystemExit(1 if wrong else 0)


if __name__ == "__main__":
    main()
