"""Plots (``dau plot``, ``dau eval --plot``): the files are written, readable, and draw the
data the runs recorded."""

import json

import numpy as np
import pytest
from PIL import Image

from dau.errors import ConfigError
from dau.plots import gaps_figure, membership_figure, plot_steps, steps_figure

SYNTH = "synthetic:classes=4,channels=1,size=8,train=240,test=80,seed=0"
TRAIN = ["train", "--dataset", SYNTH, "--width", "0.125", "--epochs", "2", "--batch-size", "32",
         "--lr", "0.05", "--device", "cpu", "-q"]


def lines(ax):
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in ax.get_lines() if not line.get_label().startswith("_")}


def test_the_steps_figure_draws_the_log_s_values_at_their_steps():
    records = [{"phase": "pretrain", "step": 1, "attacker_acc": 0.5}]
    for step in range(1, 7):
        record = {"phase": "unlearn", "step": step, "loss": 1.0 / step, "retain_loss": 0.5,
                  "lr": 0.01 * step, "retain_batch_acc": 0.9}
        if step % 2:  # adversarial steps only
            record.update(attacker_forget_acc=0.6, attacker_val_acc=0.4, forget_batch_acc=0.1 * step,
                          val_batch_acc=0.5, adv_loss=0.7, bt_loss=100.0)
        records.append(record)
    fig = steps_figure(records, {"stopping": {"forgotten_at": 3, "repaired_at": 5}})
    losses, attacker, defender, lr = fig.axes
    assert lines(losses)["loss"] == ([1, 2, 3, 4, 5, 6], [1.0, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 6])
    assert lines(losses)["bt_loss"] == ([1, 3, 5], [100.0] * 3)
    assert lines(defender)["forget_batch_acc"] == ([1, 3, 5], pytest.approx([0.1, 0.3, 0.5]))
    assert lines(lr)["lr"][1] == pytest.approx([0.01 * s for s in range(1, 7)])
    assert set(lines(attacker)) == {"attacker_forget_acc", "attacker_val_acc"}
    # the stopping rule's two steps, marked on every panel
    assert all(sorted(line.get_xdata()[0] for line in ax.get_lines()
                      if line.get_label().startswith("_")) == [3, 5] for ax in fig.axes)


def test_a_training_run_is_drawn_by_epoch_and_an_empty_log_is_an_error():
    records = [{"epoch": e, "loss": 2.0 / e, "train_acc_running": 50 + e, "val_acc": 40 + e,
                "lr": 0.1} for e in (1, 2, 3)]
    loss, acc, _ = steps_figure(records).axes
    assert lines(loss)["loss"][1] == pytest.approx([2.0, 1.0, 2 / 3])
    assert lines(acc)["val_acc"] == ([1, 2, 3], [41, 42, 43])
    with pytest.raises(ConfigError, match="no unlearning steps and no training epochs"):
        steps_figure([{"phase": "pretrain", "step": 1}])


def test_membership_and_gap_figures_draw_every_set_and_run():
    rng = np.random.default_rng(0)
    scores = {name: {k: rng.random(n) for k in ("confidence", "entropy", "m_entropy")}
              for name, n in (("forget", 20), ("retain", 200), ("test", 50))}
    fig = membership_figure(scores)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == \
        ["forget (20)", "retain (200)", "test (50)"]
    runs = [{"name": "a", "gap": {"UA": 1.0, "RA": 2.0, "TA": 0.5, "MIA": 3.0, "VA": 0.0,
                                   "avg_gap": 1.6}},
            {"name": "b", "gap": {"UA": 4.0, "RA": None, "TA": 0.5, "MIA": 3.0, "VA": 0.0,
                                   "avg_gap": 2.5}}]
    bars = gaps_figure(runs, "retrain").axes[0].patches
    assert [round(b.get_height(), 2) for b in bars[:6]] == [1.0, 2.0, 0.5, 3.0, 0.0, 1.6]
    assert np.isnan(bars[7].get_height())  # b's missing RA gap: no bar


def test_dau_plot_and_eval_plot_write_readable_files(cli, tmp_path):
    runs = tmp_path / "runs"
    code, out, err = cli(*TRAIN, "--runs-dir", str(runs), "-o", str(runs / "orig"))
    assert code == 0, err
    code, out, err = cli(*TRAIN, "--runs-dir", str(runs), "-o", str(runs / "retrain"),
                         "--forget", "random:10%", "--exclude-forget")
    assert code == 0, err
    code, out, err = cli("unlearn", "--model", str(runs / "orig"), "--forget", "random:10%",
                         "--epochs", "1", "--batch-size", "32", "--attacker-iters", "3",
                         "--noise-copies", "2", "--device", "cpu", "-q", "-o", str(runs / "dau"))
    assert code == 0, err
    code, _, err = cli("plot", str(runs / "dau"), str(runs / "orig"), "--format", "png",
                       "--format", "svg")
    assert code == 0, err
    for run in ("dau", "orig"):
        with Image.open(runs / run / "plots" / "steps.png") as image:
            assert image.width > 600 and image.height > 300
        assert (runs / run / "plots" / "steps.svg").read_text().lstrip().startswith("<?xml")
    code, out, err = cli("eval", str(runs / "dau"), "--reference", str(runs / "retrain"),
                         "--device", "cpu", "--plot", "--json", "-q")
    assert code == 0, err
    assert "scores" not in json.loads(out)["runs"][0]  # arrays stay out of the JSON
    for path in (runs / "dau" / "plots" / "membership.png",
                 runs / "retrain" / "plots" / "membership.png",
                 runs / "retrain" / "plots" / "gaps.png"):
        with Image.open(path) as image:
            assert image.width > 400, path
    assert not list(runs.rglob("*.tmp*"))  # written atomically: no temporary file left
    code, _, err = cli("plot", str(tmp_path))
    assert code != 0 and "log.jsonl" in err


def test_an_unknown_format_names_the_option(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text(json.dumps({"epoch": 1, "loss": 1.0}) + "\n")
    with pytest.raises(ConfigError, match=r"--format.*png, svg.*'jpg'"):
        plot_steps(run, ["jpg"])
    assert not (run / "plots").exists() or not list((run / "plots").iterdir())
