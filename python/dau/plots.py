"""Plots of what runs record, drawn with matplotlib into ``RUN/plots/`` (PNG, or SVG).

* :func:`plot_steps`: a run's log over its steps (unlearning: the losses, the attacker's
  accuracy on forget vs validation batches, the defender's accuracy on its forget, validation
  and retain batches, the learning rate; training: loss, accuracies and learning rate by epoch).
* :func:`plot_membership`: the distribution of each membership-attack score (confidence,
  entropy, modified entropy) on the forget, retain and test sets of an evaluated run.
* :func:`plot_gaps`: the per-metric gaps of several runs to a reference.

Figures are built with matplotlib's object API (no pyplot: no global backend or state is
changed) and written atomically.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dau.errors import ConfigError
from dau.eval.report import GAP_METRICS

__all__ = ["FORMATS", "gaps_figure", "membership_figure", "plot_gaps", "plot_membership",
           "plot_steps", "steps_figure"]

FORMATS = ("png", "svg")
_SCORES = (("confidence", "confidence in the true class"), ("entropy", "entropy"),
           ("m_entropy", "modified entropy"))


def _figure(rows: int, cols: int, size: tuple[float, float]) -> tuple[Any, Any]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def _save(fig: Any, path: Path, formats: Sequence[str]) -> list[Path]:
    """Write ``fig`` as ``path`` with each suffix of ``formats``, atomically."""
    from dau._atomic import atomic_write

    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"--format: expected some of {', '.join(FORMATS)}; got {list(formats)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=110)
        with atomic_write(target) as fh:
            fh.write(buffer.getvalue())
        written.append(target)
    return written


def _read_log(run: Path) -> list[dict[str, Any]]:
    log = run / "log.jsonl"
    if not log.is_file():
        raise ConfigError(f"RUN: {str(run)!r} has no log.jsonl; expected a run directory "
                          "written by dau train or dau unlearn")
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _series(records: Sequence[Mapping[str, Any]], x: str, key: str) -> tuple[list[Any], list[Any]]:
    rows = [r for r in records if key in r and r[key] is not None]
    return [r[x] for r in rows], [r[key] for r in rows]


def _panel(ax: Any, records: Sequence[Mapping[str, Any]], x: str, keys: Sequence[str],
           title: str, ylabel: str) -> None:
    for key in keys:
        xs, ys = _series(records, x, key)
        if xs:
            ax.plot(xs, ys, label=key, lw=1.2, marker="." if len(xs) < 40 else None)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def steps_figure(records: Sequence[Mapping[str, Any]],
                 summary: Mapping[str, Any] | None = None) -> Any:
    """The figure of a run's log records (see the module docstring)."""
    steps = [r for r in records if r.get("phase") == "unlearn"]
    if steps:
        fig, axes = _figure(2, 2, (10, 6.5))
        _panel(axes[0][0], steps, "step",
               ("loss", "retain_loss", "adv_loss", "bt_loss", "attacker_loss"), "losses", "loss")
        axes[0][0].set_yscale("log")  # the cross-correlation term is ~100x the others
        _panel(axes[0][1], steps, "step",
               ("attacker_forget_acc", "attacker_val_acc", "attacker_acc"),
               "the attacker on its batches", "accuracy")
        _panel(axes[1][0], steps, "step",
               ("forget_batch_acc", "val_batch_acc", "retain_batch_acc", "forget_eval_acc",
                "val_eval_acc"),
               "the defender on its batches", "accuracy")
        _panel(axes[1][1], steps, "step", ("lr",), "learning rate", "lr")
        stopping = (summary or {}).get("stopping") or {}
        for where, colour in (("forgotten_at", "tab:red"), ("repaired_at", "tab:green")):
            if stopping.get(where) is not None:
                for ax in (a for row in axes for a in row):
                    ax.axvline(stopping[where], color=colour, lw=0.8, ls="--")
        return fig
    epochs = [r for r in records if "epoch" in r and "phase" not in r]
    if not epochs:
        raise ConfigError("the run's log has no unlearning steps and no training epochs to plot")
    fig, axes = _figure(1, 3, (12, 3.6))
    _panel(axes[0][0], epochs, "epoch", ("loss",), "training loss", "loss")
    _panel(axes[0][1], epochs, "epoch", ("train_acc_running", "val_acc"), "accuracy", "%")
    _panel(axes[0][2], epochs, "epoch", ("lr",), "learning rate", "lr")
    return fig


def plot_steps(run: str | Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Draw a run's log (:func:`steps_figure`) as ``RUN/plots/steps.<format>``."""
    path = Path(run)
    manifest = path / "manifest.json"
    summary = json.loads(manifest.read_text()).get("summary") if manifest.is_file() else None
    fig = steps_figure(_read_log(path), summary)
    return _save(fig, path / "plots" / "steps", formats)


def membership_figure(scores: Mapping[str, Mapping[str, Any]]) -> Any:
    """Histograms of each attack score on each set: ``scores[set][score]`` arrays."""
    import numpy as np

    fig, axes = _figure(1, len(_SCORES), (12, 3.6))
    for ax, (key, title) in zip(axes[0], _SCORES, strict=True):
        values = {name: np.asarray(s[key]).ravel() for name, s in scores.items() if key in s}
        every = np.concatenate([v for v in values.values() if len(v)]) if values else np.zeros(0)
        bins = np.histogram_bin_edges(every, bins=40) if len(every) else 10
        for name, v in values.items():
            if len(v):
                ax.hist(v, bins=bins, density=True, histtype="step", lw=1.3,
                        label=f"{name} ({len(v)})")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("density")
        ax.set_yscale("log")  # the scores pile up at one end on well-fit sets
        ax.legend(fontsize=7)
    return fig


def plot_membership(run: str | Path, scores: Mapping[str, Mapping[str, Any]],
                    formats: Sequence[str] = ("png",)) -> list[Path]:
    """Draw :func:`membership_figure` as ``RUN/plots/membership.<format>``."""
    return _save(membership_figure(scores), Path(run) / "plots" / "membership", formats)


def gaps_figure(results: Sequence[Mapping[str, Any]], reference: str) -> Any:
    """Grouped bars: each run's absolute gap to the reference, per metric and on average."""
    import numpy as np

    names = [r["name"] for r in results]
    metrics = [*GAP_METRICS, "VA", "avg_gap"]  # the averaged gaps, VA's, their average
    fig, axes = _figure(1, 1, (max(6.0, 1.2 * len(metrics) + 0.4 * len(names)), 3.8))
    ax = axes[0][0]
    width = 0.8 / max(len(results), 1)
    for i, result in enumerate(results):
        gaps = result["gap"]
        heights = [np.nan if gaps.get(m) is None else gaps[m] for m in metrics]
        ax.bar(np.arange(len(metrics)) + (i - (len(results) - 1) / 2) * width, heights, width,
               label=names[i])
    ax.set_xticks(np.arange(len(metrics)), [m.replace("avg_gap", "Avg.Gap") for m in metrics])
    ax.set_ylabel(f"|run − {reference}| (points)")
    ax.set_title(f"gaps to {reference}", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def plot_gaps(results: Sequence[Mapping[str, Any]], reference: Mapping[str, Any],
              out: str | Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Draw :func:`gaps_figure` of ``results`` (each with its ``gap``) as
    ``OUT/plots/gaps.<format>`` (``dau eval --plot``: OUT is the reference run)."""
    if not results or any("gap" not in r for r in results):
        raise ConfigError("a gaps plot needs runs evaluated against a reference (--reference)")
    return _save(gaps_figure(results, reference["name"]), Path(out) / "plots" / "gaps", formats)
