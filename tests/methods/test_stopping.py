"""DAU's measured stopping rule: forget, repair, stop, from what the run measures."""

import pytest
import torch
from test_resume import ALWAYS, interrupt_at, weights
from unlearn_helpers import small, unlearn_steps

from dau.checkpoint import STATE
from dau.errors import ConfigError
from dau.methods.stopping import MeasuredStop


def adversarial(forget, val=0.5, retain=0.9):
    return {"forget_eval_acc": forget, "val_eval_acc": val, "attacker_acc": 0.7,
            "retain_batch_acc": retain}


def test_class_wise_forgetting_needs_the_window_s_forget_accuracy_at_zero():
    rule = MeasuredStop(classwise=True, window=3, tolerance=0.0, retain_target=0.95)
    assert not rule.observe(1, adversarial(0.0, retain=0.99))  # one step is not a window
    assert not rule.observe(2, adversarial(0.1, retain=0.99))
    assert not rule.observe(3, adversarial(0.0, retain=0.99)) and rule.adversarial
    # the window [0.1, 0, 0] has mean > 0; [0, 0, 0] is forgotten, and the retain is fine
    assert not rule.observe(4, adversarial(0.0, retain=0.99))
    assert rule.observe(5, adversarial(0.0, retain=0.99))
    assert (rule.forgotten_at, rule.repaired_at) == (5, 5) and not rule.adversarial


def test_random_forgetting_targets_the_validation_accuracy_then_the_retain_comes_back():
    rule = MeasuredStop(classwise=False, window=2, tolerance=0.02, retain_target=0.9)
    for step in (1, 2):
        rule.observe(step, adversarial(0.95, val=0.8))
    assert rule.forgotten_at is None
    rule.observe(3, adversarial(0.81, val=0.8))
    rule.observe(4, adversarial(0.79, val=0.8, retain=0.7))  # mean 0.80 <= 0.80 + 0.02
    assert rule.forgotten_at == 4 and rule.repaired_at is None
    assert not rule.observe(5, {"retain_batch_acc": 0.87})  # mean (0.7 + 0.87) / 2 < 0.88
    assert rule.observe(6, {"retain_batch_acc": 0.89})  # mean 0.88 >= 0.9 - 0.02
    again = MeasuredStop.from_state(rule.state(), classwise=False, window=2, tolerance=0.02)
    assert again.state() == rule.state()
    assert rule.summary(6)["window_means"]["retain_batch_acc"] == pytest.approx(0.88)


def test_a_measured_class_wise_run_stops_the_branch_then_the_run(original, tmp_path):
    from dau.methods.run import unlearn

    run = unlearn(small(epochs=4, stop_rule="measured", stop_window=2), forget="class:1",
                  model=original.path, runs_dir=tmp_path, progress=False)
    stopping = run.manifest["summary"]["stopping"]
    steps = unlearn_steps(run)
    forgotten, ended = stopping["forgotten_at"], stopping["ended_at"]
    assert stopping["rule"] == "measured" and forgotten is not None
    assert stopping["repaired_at"] == ended == len(steps) < 4 * 6  # before the 4-epoch cap
    assert all(r["beta"] == 1.0 for r in steps if r["step"] <= forgotten)
    assert all(r["beta"] == 0.0 and "adv_loss" not in r for r in steps if r["step"] > forgotten)
    window = [r["forget_eval_acc"] for r in steps[forgotten - 2:forgotten]]
    assert sum(window) / len(window) <= 0.02  # the default tolerance, over the window of 2
    assert run.manifest["config"]["unlearn"]["stop_rule"] == "measured"
    assert run.manifest["config"]["unlearn"]["stop_iter"] is None  # no step count needed


def test_a_capped_measured_run_says_it_did_not_get_there(original, tmp_path, caplog):
    from dau.methods.run import unlearn

    with caplog.at_level("WARNING"):
        run = unlearn(small(stop_rule="measured", stop_window=50), forget="random:10%",
                      model=original.path, runs_dir=tmp_path, progress=False)
    stopping = run.manifest["summary"]["stopping"]
    assert stopping["forgotten_at"] is None and stopping["ended_at"] == len(unlearn_steps(run))
    assert "reached its cap" in caplog.text and "before forgetting" in caplog.text


def test_a_measured_run_resumes_with_its_windows(original, tmp_path, monkeypatch):
    """Interrupted at the step that completes the forgetting window: the resumed run needs the
    saved window to see forgetting at the same step, and then ends as the uninterrupted one."""
    from dau.checkpoint import load_run
    from dau.methods.run import resume, unlearn

    config = small(epochs=2, stop_rule="measured", stop_window=3, stop_tolerance=0.0)
    kw = dict(forget="class:2", model=original.path, runs_dir=tmp_path, progress=False)
    full = unlearn(config, out=tmp_path / "full", **kw)
    forgotten = full.manifest["summary"]["stopping"]["forgotten_at"]
    assert forgotten is not None and forgotten >= 4
    interrupt_at(monkeypatch, forgotten)
    with pytest.raises(KeyboardInterrupt):
        unlearn(config, out=tmp_path / "cut", checkpoint_seconds=ALWAYS, **kw)
    monkeypatch.undo()
    saved = torch.load(tmp_path / "cut" / STATE, weights_only=True)
    assert saved["step"] == forgotten - 1 and saved["stopper"]["forgotten_at"] is None
    assert len(saved["stopper"]["forget"]) == 3  # the window the resumed run completes
    done = resume(load_run(tmp_path / "cut").path, progress=False)
    assert done.manifest["summary"] == {**full.manifest["summary"],
                                        "attacker": done.manifest["summary"]["attacker"]}
    a, b = weights(full), weights(done)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("field, value", [("stop_rule", "sometimes"), ("stop_window", 0),
                                          ("stop_tolerance", 1.5)])
def test_bad_stopping_settings_name_the_option(field, value):
    with pytest.raises(ConfigError, match=field.replace("_", "[-_]")):
        small(**{field: value})
