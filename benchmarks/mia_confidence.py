"""Why a run's MIA-efficacy differs from retrain's: its confidence on retain, forget and test.

MIA-efficacy (``dau eval``'s MIA column) is the share of forget samples that an SVC,
fitted on the model's confidence p_y of retain samples (members) against test samples
(non-members), calls non-members. It is high only when two things hold: the forget
samples are as unconfident as test samples, *and* the retain samples are confident
enough for the SVC to separate them from test samples. This script prints, for each
run, the share of each set below a few confidence thresholds and the lower quantiles,
so the two can be told apart.

``python benchmarks/mia_confidence.py --reference RUN RUN... [--data-dir DIR]``

The sets are those of the reference's split (as ``dau eval RUN --reference REF``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

from dau.checkpoint import load_run
from dau.eval.accuracy import predict
from dau.eval.mia import mia_features
from dau.eval.runs import evaluation_sets

THRESHOLDS = (0.5, 0.9, 0.99)
QUANTILES = (0.05, 0.1, 0.2)


def confidences(run_dir: Path, sets: dict, device: str) -> dict[str, np.ndarray]:
    model = load_run(run_dir).load_model(device)
    out = {}
    for name, data in sets.items():
        pred = predict(model, data.images, data.labels, device=device, progress=False)
        out[name] = mia_features(pred)["confidence"][:, 0]  # the confidence attack's feature
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories to profile")
    parser.add_argument("--reference", type=Path, required=True,
                        help="the retrain run whose split defines retain, forget and test")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    reference = load_run(args.reference)
    plan, every_set = evaluation_sets(reference, data_dir=args.data_dir)
    sets = {name: every_set[name] for name in ("retain", "forget", "test")}
    print(f"split {plan.spec} of {reference.name}; confidence = p_y, the softmax of the label")
    head = "  ".join(f"<{t:g}" for t in THRESHOLDS)
    quant = "  ".join(f"q{q:g}" for q in QUANTILES)
    print(f"{'run':<24} {'set':<7} {'share ' + head:<30} quantiles {quant}")
    for run_dir in [args.reference, *args.runs]:
        for name, conf in confidences(run_dir, sets, args.device).items():
            shares = "  ".join(f"{100 * (conf < t).mean():5.1f}%" for t in THRESHOLDS)
            quantiles = "  ".join(f"{np.quantile(conf, q):.4f}" for q in QUANTILES)
            print(f"{run_dir.name:<24} {name:<7} {shares:<30} {quantiles}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
