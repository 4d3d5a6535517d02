"""gap / avg_gap arithmetic and the plain-text table."""

from __future__ import annotations

import pytest

from dau.errors import ConfigError
from dau.eval import METRIC_ORDER, format_table, gap

# SalUn paper, Table 1, CIFAR-10 random 10 % (anchors.md §2a).
RETRAIN = {"UA": 5.24, "RA": 100.00, "TA": 94.26, "MIA": 12.88, "VA": 91.0, "RTE": 43.29 * 60,
           "cost": {"seconds": 43.29 * 60, "one_time_seconds": 0.0}}
SALUN = {"UA": 2.85, "RA": 99.62, "TA": 93.93, "MIA": 14.39, "VA": 90.5, "RTE": 2.66 * 60,
         "cost": {"seconds": 2.66 * 60, "one_time_seconds": 0.34 * 60}}


def test_gap_reproduces_the_published_avg_gap() -> None:
    g = gap(SALUN, RETRAIN)
    assert g["UA"] == pytest.approx(2.39)
    assert g["RA"] == pytest.approx(0.38)
    assert g["TA"] == pytest.approx(0.33)
    assert g["MIA"] == pytest.approx(1.51)
    assert g["VA"] == pytest.approx(0.5)
    assert g["avg_gap"] == pytest.approx((2.39 + 0.38 + 0.33 + 1.51) / 4)  # 1.1525; VA not in it
    assert gap(RETRAIN, RETRAIN)["avg_gap"] == 0.0
    assert g["cost_ratio"] == pytest.approx(2.66 / 43.29)  # 0.061: the published "1/16"
    assert g["cost_ratio_with_setup"] == pytest.approx(3.0 / 43.29)
    no_setup = {**SALUN, "cost": {"seconds": 2.66 * 60, "one_time_seconds": None}}
    assert gap(no_setup, RETRAIN)["cost_ratio_with_setup"] is None
    assert gap({**SALUN, "cost": None}, RETRAIN)["cost_ratio"] is None


def test_gap_is_symmetric_and_absolute() -> None:
    metric_keys = ("UA", "RA", "TA", "MIA", "VA", "avg_gap")
    forward, backward = gap(SALUN, RETRAIN), gap(RETRAIN, SALUN)
    assert {k: forward[k] for k in metric_keys} == pytest.approx(
        {k: backward[k] for k in metric_keys})


@pytest.mark.parametrize("missing", [None, float("nan"), "absent"])
def test_gap_with_a_missing_metric(missing: object) -> None:
    metrics = dict(SALUN)
    if missing == "absent":
        del metrics["MIA"]
    else:
        metrics["MIA"] = missing  # type: ignore[assignment]
    g = gap(metrics, RETRAIN)
    assert g["MIA"] is None
    assert g["avg_gap"] is None  # never an average over fewer than the four metrics
    assert g["UA"] == pytest.approx(2.39)


def test_metric_order() -> None:
    assert METRIC_ORDER == ("UA", "RA", "TA", "VA", "MIA", "privacy", "RTE")


def test_table_has_the_numbers_in_their_columns() -> None:
    table = format_table([("retrain", RETRAIN), ("salun", SALUN | {"privacy": 50.123})])
    lines = table.splitlines()
    assert lines[0].split() == ["run", "UA", "RA", "TA", "VA", "MIA", "privacy", "RTE(min)"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == [
        "retrain",
        "5.24",
        "100.00",
        "94.26",
        "91.00",
        "12.88",
        "–",
        "43.29",
    ]
    assert lines[3].split() == [
        "salun",
        "2.85",
        "99.62",
        "93.93",
        "90.50",
        "14.39",
        "50.12",
        "2.66",
    ]
    assert len({len(line) for line in lines}) == 1  # aligned
    # right-aligned numbers: each value ends where its header ends
    for header_word in ("UA", "RA", "TA", "privacy"):
        end = lines[0].index(header_word) + len(header_word)
        assert lines[3][end - 1] != " " and (end == len(lines[3]) or lines[3][end] == " ")


def test_table_rte_in_seconds() -> None:
    table = format_table([("salun", SALUN)], rte_unit="s")
    assert "RTE(s)" in table and "159.60" in table


def test_table_with_reference_has_a_gap_block() -> None:
    table = format_table(
        [("retrain", RETRAIN), ("salun", SALUN), ("empty", {})], reference="retrain"
    )
    top, bottom = table.split("\n\n")
    gap_lines = bottom.splitlines()
    assert gap_lines[0].split() == [
        "gap",
        "to",
        "retrain",
        "UA",
        "RA",
        "TA",
        "VA",
        "MIA",
        "Avg.Gap",
        "Cost",
        "Cost+setup",
    ]
    assert gap_lines[2].split() == ["retrain", *["0.00"] * 6, "1.00", "1.00"]
    assert gap_lines[3].split() == ["salun", "2.39", "0.38", "0.33", "0.50", "1.51", "1.15",
                                    "0.06", "0.07"]
    assert gap_lines[4].split() == ["empty", *["–"] * 8]
    assert top.splitlines()[4].split() == ["empty", *["–"] * 7]


def test_table_errors() -> None:
    with pytest.raises(ConfigError, match="not among the rows"):
        format_table([("salun", SALUN)], reference="retrain")
    with pytest.raises(ConfigError, match="rte_unit"):
        format_table([("salun", SALUN)], rte_unit="h")


def test_empty_table_is_just_a_header() -> None:
    lines = format_table([]).splitlines()
    assert len(lines) == 2 and lines[0].startswith("run")
