"""Metric tables: the papers' columns, the gap to a Retrain reference, plain-text output.

A *metrics* dict is what :func:`dau.eval.evaluate` returns (plus ``"RTE"``, the
unlearning run time in seconds, added by whoever timed the run). Only its
top-level keys named in :data:`METRIC_ORDER` are read; a missing key, ``None``
or NaN is shown as "–".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from dau.errors import ConfigError

__all__ = ["GAP_METRICS", "METRIC_ORDER", "format_table", "gap"]

METRIC_ORDER: tuple[str, ...] = ("UA", "RA", "TA", "VA", "MIA", "privacy", "RTE")
"""Table columns. UA = 100 − forget accuracy, RA = retain accuracy, TA = test
accuracy, VA = validation accuracy (all %); MIA = MIA-Efficacy, 100 × the
confidence attack's forget efficacy; privacy = 100 × the confidence attack's
training privacy; RTE = run time in seconds (shown in minutes by default)."""

GAP_METRICS: tuple[str, ...] = ("UA", "RA", "TA", "MIA")
"""The metrics averaged into Avg. Gap (SalUn / Unlearn-Sparse convention)."""

_GAP_EXTRA: tuple[str, ...] = ("VA",)
_MISSING = "–"


def _number(metrics: Mapping[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def gap(metrics: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, float | None]:
    """Absolute differences to a reference run (usually Retrain).

    Returns ``{"UA", "RA", "TA", "MIA", "VA", "avg_gap", "cost_ratio",
    "cost_ratio_with_setup"}``: ``|metrics[k] − reference[k]|`` for each (None when
    either side lacks it), ``avg_gap``, the mean over UA, RA, TA and MIA only (None
    unless all four are known; VA is reported but not averaged), and the run's cost
    over the reference's (``metrics["cost"]["seconds"]``, this request's wall time, over
    the reference's; ``_with_setup`` adds the one-time setup it paid or reused).
    """
    result: dict[str, float | None] = {}
    for key in (*GAP_METRICS, *_GAP_EXTRA):
        mine, theirs = _number(metrics, key), _number(reference, key)
        result[key] = None if mine is None or theirs is None else abs(mine - theirs)
    parts = [result[key] for key in GAP_METRICS]
    known = [value for value in parts if value is not None]
    result["avg_gap"] = sum(known) / len(known) if len(known) == len(parts) else None
    mine_cost, ref_cost = metrics.get("cost") or {}, reference.get("cost") or {}
    ref_seconds = ref_cost.get("seconds")
    ok = bool(ref_seconds) and mine_cost.get("seconds") is not None
    result["cost_ratio"] = mine_cost["seconds"] / ref_seconds if ok else None
    one_time = mine_cost.get("one_time_seconds")
    result["cost_ratio_with_setup"] = (
        (mine_cost["seconds"] + one_time) / ref_seconds if ok and one_time is not None else None)
    return result


def _cell(value: float | None) -> str:
    return _MISSING if value is None else f"{value:.2f}"


def _render(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    widths = [len(h) for h in header]
    for row in body:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = []
    for row in (header, *body):
        first = row[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def format_table(
    rows: Sequence[tuple[str, Mapping[str, Any]]],
    reference: str | None = None,
    *,
    rte_unit: str = "min",
) -> str:
    """An aligned plain-text table, one row per run, columns :data:`METRIC_ORDER`.

    Args:
        rows: ``(run name, metrics)`` pairs, in display order.
        reference: the name of the row to compare against (e.g. "retrain"); when
            given a second block lists, per run, the gap to it on UA, RA, TA, VA,
            MIA and Avg.Gap (the mean over UA, RA, TA, MIA), and the cost ratio to it:
            this request's wall time over the reference's, without and with the
            one-time setup (see :func:`gap`).
        rte_unit: "min" or "s" for the RTE column (metrics hold seconds).

    Numbers have two decimals; a missing value is "–".
    """
    if rte_unit not in ("min", "s"):
        raise ConfigError(f"rte_unit must be 'min' or 's', got {rte_unit!r}")
    names = [name for name, _ in rows]
    if reference is not None and reference not in names:
        raise ConfigError(
            f"reference run {reference!r} is not among the rows ({', '.join(names) or 'none'})"
        )

    header = ["run", *(f"RTE({rte_unit})" if k == "RTE" else k for k in METRIC_ORDER)]
    body = []
    for name, metrics in rows:
        cells = [name]
        for key in METRIC_ORDER:
            value = _number(metrics, key)
            if key == "RTE" and value is not None and rte_unit == "min":
                value /= 60.0
            cells.append(_cell(value))
        body.append(cells)
    lines = _render(header, body)

    if reference is not None:
        ref_metrics = next(m for n, m in rows if n == reference)
        gap_keys = ("UA", "RA", "TA", "VA", "MIA")
        gap_header = [f"gap to {reference}", *gap_keys, "Avg.Gap", "Cost", "Cost+setup"]
        gap_body = []
        for name, metrics in rows:
            gaps = gap(metrics, ref_metrics)
            gap_body.append([name, *(_cell(gaps[k]) for k in gap_keys), _cell(gaps["avg_gap"]),
                             _cell(gaps["cost_ratio"]), _cell(gaps["cost_ratio_with_setup"])])
        lines.append("")
        lines.extend(_render(gap_header, gap_body))
    return "\n".join(lines)
