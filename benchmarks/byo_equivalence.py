"""Fashion-MNIST in memory vs the same data exported to an ImageFolder tree of PNG files.

Claim: the streamed source is the same dataset: the same split, the same dataset digests, the
same forget set for the same deletion request (a ``files:`` list of PNGs), and the same
metrics after the same training and unlearning (same seeds, same protocol). Every step is a
``dau`` command, printed as it runs; the table compares the two paths side by side.

    python benchmarks/byo_equivalence.py [--tree DIR] [--out DIR] [--width 0.125] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

import dau
from dau.data.formats import write_image_folder

# DAU's Fashion-MNIST defaults given explicitly: the defaults table is keyed by dataset name,
# and an imagefolder tree would otherwise take the CIFAR-10 fallback's
UNLEARN = ("--epochs", "1", "--attacker-iters", "50", "--lr", "0.05", "--schedule", "cosine",
           "--adv-weight", "3", "--adversarial-targets", "forget", "--adversarial-every", "3")


def dau_cli(*args: str) -> dict:
    cmd = [sys.executable, "-m", "dau", *args]
    print("$ dau " + " ".join(args), flush=True)
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}):\n{done.stderr[-3000:]}")
    print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    return json.loads(done.stdout) if done.stdout.strip() else {}


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def split_doc(run: Path) -> dict:
    return json.loads((run / "split.json").read_text())


def weight_gap(a: Path, b: Path) -> float:
    """The largest absolute difference between the two runs' weights (0.0: bit-identical)."""
    from safetensors.torch import load_file

    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return max(float((wa[k].double() - wb[k].double()).abs().max()) if wa[k].numel() else 0.0
               for k in wa)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=Path("/tmp/dau-fmnist-imagefolder"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/dau-byo-equivalence"))
    parser.add_argument("--width", default="0.125")
    parser.add_argument("--epochs", default="2")
    parser.add_argument("--request-size", type=int, default=300)
    args = parser.parse_args()

    if not (args.tree / "test").is_dir():
        print(f"exporting Fashion-MNIST to {args.tree} ...", flush=True)
        write_image_folder(args.tree, dau.load_dataset("fashion-mnist"))
    pngs = sorted((args.tree / "train").rglob("*.png"), key=lambda p: p.name)
    request = args.out / "request.txt"
    args.out.mkdir(parents=True, exist_ok=True)
    request.write_text("".join(f"{p}\n" for p in pngs[7::len(pngs) // args.request_size]))

    # the reader's augmentation policy (flip, crop padding 2), given to the tree as options
    paths = {"in memory": "fashion-mnist",
             "imagefolder": f"imagefolder:{args.tree},hflip=true,crop_padding=2"}
    rows: dict[str, dict] = {}
    for label, dataset in paths.items():
        tag = "memory" if label == "in memory" else "folder"
        original, unlearned = args.out / f"{tag}-original", args.out / f"{tag}-dau"
        if not (original / "model.safetensors").exists():
            dau_cli("train", "--dataset", dataset, "--width", args.width, "--epochs", args.epochs,
                    "--device", "cpu", "-q", "-o", str(original))
        if not (unlearned / "model.safetensors").exists():
            dau_cli("unlearn", "--model", str(original), "--forget", f"files:{request}",
                    *UNLEARN, "--device", "cpu", "-q", "-o", str(unlearned))
        evaluated = dau_cli("eval", str(original), str(unlearned), "--device", "cpu", "-q",
                            "--json")["runs"]
        doc = split_doc(unlearned)
        rows[label] = {
            "split": manifest(original)["split"]["fingerprint"],
            "train digest": doc["dataset"]["train_digest"],
            "test digest": doc["dataset"]["test_digest"],
            "forget (request)": f"{len(doc['forget'])} samples, digest "
                                f"{doc['dataset']['set_digests']['forget'][:12]}",
            "request resolution": json.dumps(doc["request"]["summary"], sort_keys=True),
            "unlearn split": doc["fingerprint"],
            "train s/epoch": round(sum(manifest(original)["timings"]["epoch_seconds"])
                                   / int(args.epochs), 1),
            **{f"original {k}": evaluated[0][k] for k in ("RA", "TA", "VA")},
            **{f"dau {k}": evaluated[1][k] for k in ("UA", "RA", "TA", "MIA")},
        }

    print(f"\nmachine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"dau {dau.__version__}; ResNet-18 width {args.width}, {args.epochs} epochs, DAU 1 "
          f"epoch with 50 attacker iterations, request of {args.request_size} PNG files")
    a, b = rows["in memory"], rows["imagefolder"]
    for tag in ("original", "dau"):
        gap = weight_gap(args.out / f"memory-{tag}", args.out / f"folder-{tag}")
        a[f"{tag} weights max diff"], b[f"{tag} weights max diff"] = 0.0, gap
    print(f"{'':22} {'in memory':>34} {'imagefolder':>34}  same")
    for key in a:
        va, vb = a[key], b[key]
        same = "yes" if va == vb else (f"{vb - va:+.3f}" if isinstance(va, float) else "NO")
        print(f"{key:22} {str(va)[:34]:>34} {str(vb)[:34]:>34}  {same}")
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
