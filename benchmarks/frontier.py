"""Quality against cost of DAU settings and of the baselines: the average gap to retraining
vs the cost ratio.

For each seed: an original, a retrain without a random 10 % and one without each class;
then every DAU setting unlearns each forget set from the original, and is evaluated against
the matching retrain. Cost is measured two ways: defender images (forward + backward) of the
request over the retrain's (independent of other load on the machine), and seconds. The
attacker's pretraining is one-time setup (cached per model): reported separately.

    python benchmarks/frontier.py --dataset digits --seeds 1,2,3 --classes 1,4,7 \
        --settings fixed,measured --out /tmp/dau-frontier [--plot frontier.png]

Rows go to OUT/results.jsonl as they finish (a rerun skips what is there); the table prints
mean ± std over seeds (and classes) per setting and mode.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

# DAU settings: UnlearnConfig fields over the method's defaults ("fixed": the defaults as
# they resolve for the dataset, the reference's fixed step and epoch counts)
SETTINGS: dict[str, dict[str, Any]] = {
    "fixed": {},
    "measured": {"stop_rule": "measured"},
    "measured-m2": {"stop_rule": "measured", "noise_copies": 2},
    "measured-every3": {"stop_rule": "measured", "adversarial_every": 3},
    "measured-m2-every3": {"stop_rule": "measured", "noise_copies": 2, "adversarial_every": 3},
    # the repair after the stop at the unlearning lr, not half of it, with a longer cap
    "measured-m2-repair": {"stop_rule": "measured", "noise_copies": 2, "stop_lr": 0.02,
                           "epochs": 6},
    # the baselines at their defaults (dau.methods.defaults), for the ranking
    **{name: {"method": name} for name in (
        "retrain", "ft", "ga", "rl", "salun", "l1-sparse", "neggrad+", "scrub", "ssd", "bs",
        "amun")},
}
# training protocols (dau train) and the DAU batch size / attacker pretraining per dataset
PROTOCOLS: dict[str, dict[str, Any]] = {
    "digits": {"train": dict(arch="resnet18", width=0.25, epochs=30, batch_size=64, lr=0.05),
               "unlearn": dict(batch_size=64, attacker_pretrain_iters=200)},
    "fashion-mnist": {"train": dict(arch="resnet18", width=0.125, epochs=2, batch_size=256,
                                    lr=0.1),
                      "unlearn": dict(attacker_pretrain_iters=200)},
}
METRICS = ("UA", "RA", "TA", "MIA")
REFERENCES: dict[str, dict[str, Any]] = {}  # each retrain's metrics, evaluated once


def train_run(out: Path, dataset: str, seed: int, forget: str | None) -> Path:
    from dau.config import TrainConfig
    from dau.training import train

    if (out / "manifest.json").exists():
        if json.loads((out / "manifest.json").read_text())["status"] == "complete":
            return out
        sys.exit(f"{out} is an unfinished run: remove it (or resume it with dau train --resume)")
    kw = {"forget": forget, "exclude_forget": True} if forget else {}
    config = TrainConfig(dataset=dataset, seed=seed, device="cpu",
                         **PROTOCOLS[dataset]["train"], **kw)
    train(config, runs_dir=out.parent, out=out, progress=False)
    return out


def one(args: argparse.Namespace, setting: str, forget: str, seed: int, original: Path,
        retrain: Path) -> dict[str, Any]:
    from dau.checkpoint import load_run
    from dau.config import UnlearnConfig
    from dau.eval.report import gap
    from dau.eval.runs import evaluate_run, run_cost
    from dau.methods.run import unlearn

    out = args.out / "unlearned" / f"{setting}-{forget.replace(':', '').replace('%', '')}-s{seed}"
    if (out / "manifest.json").exists() and \
            json.loads((out / "manifest.json").read_text())["status"] != "complete":
        sys.exit(f"{out} is an unfinished run: remove it")
    if not (out / "manifest.json").exists():
        config = UnlearnConfig(seed=seed, device="cpu", **PROTOCOLS[args.dataset]["unlearn"],
                               **SETTINGS[setting])
        started = time.perf_counter()
        unlearn(config, forget=forget, model=original, runs_dir=out.parent, out=out,
                progress=False)
        print(f"  {out.name}: {time.perf_counter() - started:.0f} s", flush=True)
    run, ref = load_run(out), load_run(retrain)
    kw = dict(device="cpu", progress=False, max_mia_samples=args.max_mia_samples or None)
    mine = evaluate_run(run, **kw)
    theirs = REFERENCES.get(str(retrain)) or REFERENCES.setdefault(
        str(retrain), evaluate_run(ref, **kw))
    gaps = gap(mine, theirs)
    cost, ref_cost = run_cost(run), run_cost(ref)
    assert cost is not None and ref_cost is not None
    images = cost["forward_images"] + cost["backward_images"]
    ref_images = ref_cost["forward_images"] + ref_cost["backward_images"]
    summary = run.manifest["summary"]
    return {"setting": setting, "forget": forget, "seed": seed,
            "mode": "class" if forget.startswith("class") else "random",
            **{k: mine[k] for k in METRICS}, **{f"retrain_{k}": theirs[k] for k in METRICS},
            "avg_gap": gaps["avg_gap"], "cost_images": images / ref_images,
            "setup_images": cost["one_time_forward_images"] / ref_images,
            "cost_seconds": gaps["cost_ratio"], "steps": summary.get("steps"),
            "adversarial_steps": summary.get("adversarial_steps"),
            "stopping": summary.get("stopping"), "run": str(out)}


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def report(rows: list[dict[str, Any]]) -> str:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["setting"], row["mode"]), []).append(row)
    head = ("setting", "mode", "n", *METRICS, "Avg.Gap", "cost (images)", "cost (s)", "setup")
    table = [head]
    # ranked: by mode, then by mean average gap
    for (setting, mode), rs in sorted(groups.items(), key=lambda kv: (
            kv[0][1], statistics.mean(r["avg_gap"] for r in kv[1]))):
        table.append((setting, mode, str(len(rs)),
                      *(mean_std([r[k] for r in rs]) for k in METRICS),
                      mean_std([r["avg_gap"] for r in rs]),
                      mean_std([r["cost_images"] for r in rs]),
                      mean_std([r["cost_seconds"] for r in rs if r["cost_seconds"] is not None]),
                      mean_std([r["setup_images"] for r in rs])))
    retrain = [("retrain", mode, "", *(mean_std([r[f"retrain_{k}"] for r in rs]) for k in METRICS),
                "0", "1", "1", "") for mode, rs in _by_mode(rows).items()]
    table += retrain
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def _by_mode(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    seen: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        seen[(row["forget"], row["seed"])] = row
    out: dict[str, list[dict[str, Any]]] = {}
    for row in seen.values():
        out.setdefault(row["mode"], []).append(row)
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    settings = sorted({r["setting"] for r in rows})
    colours = plt.get_cmap("tab20").colors
    for ax, mode in zip(axes, ("random", "class"), strict=True):
        for k, setting in enumerate(settings):
            rs = [r for r in rows if r["setting"] == setting and r["mode"] == mode]
            if not rs:
                continue
            x = [r["cost_images"] for r in rs]
            y = [r["avg_gap"] for r in rs]
            ax.errorbar(statistics.mean(x), statistics.mean(y),
                        xerr=statistics.stdev(x) if len(x) > 1 else 0,
                        yerr=statistics.stdev(y) if len(y) > 1 else 0, fmt="os^Dv"[k % 5],
                        capsize=3, color=colours[k % len(colours)], label=setting)
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{mode} forgetting")
        ax.set_xlabel("cost / retrain (defender images)")
        ax.set_ylabel("average gap to retrain (points)")
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=sorted(PROTOCOLS))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--classes", default="1,4,7")
    parser.add_argument("--random", default="random:10%", help="the random forget spec ('' none)")
    parser.add_argument("--settings", default="fixed,measured")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-mia-samples", type=int, default=10_000,
                        help="rows per side each membership attack is fitted on (dau eval's "
                        "--max-mia-samples; 0: all)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/dau-frontier"))
    parser.add_argument("--plot", type=Path, help="Write the frontier plot (PNG) here.")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    settings = [s for s in args.settings.split(",") if s]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        sys.exit(f"--settings: unknown {unknown}; known: {sorted(SETTINGS)}")
    args.out = args.out / args.dataset
    results = args.out / "results.jsonl"
    rows = [json.loads(ln) for ln in results.read_text().splitlines()] if results.exists() else []
    done = {(r["setting"], r["forget"], r["seed"]) for r in rows}
    forgets = ([args.random] if args.random else []) + \
        [f"class:{c}" for c in args.classes.split(",") if c]
    for seed in (int(s) for s in args.seeds.split(",")):
        original = train_run(args.out / f"original-s{seed}", args.dataset, seed, None)
        for forget in forgets:
            tag = forget.replace(":", "").replace("%", "")
            retrain = train_run(args.out / f"retrain-{tag}-s{seed}", args.dataset, seed, forget)
            for setting in settings:
                if (setting, forget, seed) in done:
                    continue
                row = one(args, setting, forget, seed, original, retrain)
                rows.append(row)
                with results.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
    print(report([r for r in rows if r["setting"] in settings]))
    if args.plot:
        plot([r for r in rows if r["setting"] in settings], args.plot)


if __name__ == "__main__":
    main()
