import json

import numpy as np
import pytest
import torch
from torch import nn

from dau.config import TrainConfig, UnlearnConfig
from dau.errors import ConfigError, DauError
from dau.models.attacker import create_attacker
from dau.unlearn.dau import (
    attacker_rows,
    cross_correlation_loss,
    draw_batch,
    frozen_bn_stats,
    sensitivity,
)

SYNTH = "synthetic:classes=4,channels=1,size=8,train=240,test=80,seed=0"


@pytest.mark.parametrize(("classes", "expected"), [(10, 141_886), (100, 511_066)])
def test_attacker_parameter_count_matches_the_reference(classes, expected):
    attacker = create_attacker("transformer", num_classes=classes)
    assert sum(p.numel() for p in attacker.parameters()) == expected
    assert attacker(torch.randn(6, 3 * classes)).shape == (6, 2)


def test_unknown_attacker_is_a_config_error():
    with pytest.raises(ConfigError, match="did you mean 'transformer'"):
        create_attacker("transformr", num_classes=10)


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        return self.fc(x.flatten(1)), x.flatten(1)


def test_sensitivity_of_a_linear_model_is_the_mean_abs_projection_of_the_noise():
    torch.manual_seed(0)
    model, x = Linear(), torch.rand(5, 1, 3, 4)
    logits, _ = model(x)
    got = sensitivity(model, x, logits, copies=7, sigma=1e-2,
                      generator=torch.Generator().manual_seed(3))
    noise = torch.randn((35, 1, 3, 4), generator=torch.Generator().manual_seed(3))
    expected = (noise.flatten(1) @ model.fc.weight.T).abs().view(7, 5, 3).mean(0)
    assert torch.allclose(got, expected, atol=1e-3)
    assert (got >= 0).all()


def test_attacker_rows_are_logits_one_hot_sensitivity():
    logits, sens = torch.randn(2, 3), torch.rand(2, 3)
    rows = attacker_rows(logits, torch.tensor([2, 0]), sens, 3)
    assert torch.equal(rows[:, :3], logits) and torch.equal(rows[:, 6:], sens)
    assert rows[:, 3:6].tolist() == [[0, 0, 1], [1, 0, 0]]


def test_cross_correlation_loss_matches_its_formula():
    torch.manual_seed(1)
    v, f = torch.randn(16, 5), torch.randn(20, 5)
    got = cross_correlation_loss(v, f, offdiag_weight=5e-3, eps=0.0)
    vs = (v - v.mean(0)) / v.std(0)
    fs = (f[:16] - f[:16].mean(0)) / f[:16].std(0)
    c = vs.T @ fs / 16
    off = c - torch.diag(torch.diagonal(c))
    expected = ((torch.diagonal(c) - 1) ** 2).sum() + 5e-3 * (off**2).sum()
    assert torch.allclose(got, expected, atol=1e-5)


def test_cross_correlation_loss_survives_a_dead_feature():
    v, f = torch.randn(8, 4), torch.randn(8, 4)
    v[:, 2] = 0.0  # a dead channel, as in a 95 %-sparse net
    assert torch.isfinite(cross_correlation_loss(v, f, offdiag_weight=5e-3, eps=1e-5))
    assert torch.isnan(cross_correlation_loss(v, f, offdiag_weight=5e-3, eps=0.0))  # the reference


def test_frozen_bn_stats_uses_batch_statistics_without_updating_running_ones():
    bn = nn.BatchNorm1d(3).train()
    x = torch.randn(10, 3) * 4 + 2
    with frozen_bn_stats(bn):
        out = bn(x)
    assert torch.equal(bn.running_mean, torch.zeros(3)) and int(bn.num_batches_tracked) == 0
    assert torch.allclose(out.mean(0), torch.zeros(3), atol=1e-5)
    bn(x)
    assert not torch.equal(bn.running_mean, torch.zeros(3))


def test_batches_of_small_sets_and_determinism():
    assert len(draw_batch(5, 256, 1, 7, 0)) == 5
    a, b = draw_batch(100, 10, 1, 7, 3), draw_batch(100, 10, 1, 7, 3)
    assert torch.equal(a, b) and len(set(a.tolist())) == 10
    assert not torch.equal(a, draw_batch(100, 10, 1, 7, 4))


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    from dau.train import train

    root = tmp_path_factory.mktemp("runs")
    config = TrainConfig(dataset=SYNTH, width=0.125, epochs=3, batch_size=32, lr=0.05, device="cpu")
    return train(config, runs_dir=root, out=root / "original", progress=False)


def small(**kw):
    values = dict(epochs=1, batch_size=32, attacker_pretrain_iters=5, noise_copies=2, device="cpu")
    values.update(kw)
    return UnlearnConfig(**values)


def test_class_wise_dau_stops_the_adversarial_branch(original, tmp_path):
    from dau.unlearn.run import unlearn

    run = unlearn(small(epochs=2, stop_iter=3, stop_lr=0.005), forget="class:1",
                  model=original.path, runs_dir=tmp_path, out=tmp_path / "u", progress=False)
    assert run.manifest["status"] == "complete" and run.manifest["kind"] == "dau"
    assert run.manifest["parent"] == str(original.path.resolve())
    records = [json.loads(line) for line in (run.path / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["phase"] == "unlearn"]
    assert [r["beta"] for r in steps[:4]] == [1.0, 1.0, 1.0, 0.0]
    assert all("adv_loss" not in r for r in steps[3:]) and all(r["lr"] == 0.005 for r in steps[3:])
    assert run.manifest["summary"]["adversarial_steps"] == 3
    assert run.manifest["summary"]["attacker"]["source"] == "trained"
    assert run.manifest["timings"]["unlearn_seconds"] > 0
    # the second run reuses the cached attacker
    again = unlearn(small(stop_iter=1, stop_lr=0.005), forget="class:2", model=original.path,
                    runs_dir=tmp_path, progress=False)
    assert again.manifest["summary"]["attacker"]["source"] == "cache"


def test_random_dau_and_baselines_change_the_model(original, tmp_path):
    from dau.checkpoint import load_run
    from dau.unlearn.run import unlearn

    before = original.load_model().state_dict()
    for method in ("dau", "ft", "ga"):
        run = unlearn(small(method=method), forget="random:10%", model=original.path,
                      runs_dir=tmp_path, progress=False)
        after = load_run(run.path).load_model().state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before), method


def test_dau_keeps_pruned_weights_at_zero(original):
    from dau.data.datasets import load_dataset
    from dau.data.splits import plan_split
    from dau.unlearn import UnlearnContext
    from dau.unlearn.dau import dau_method

    data = load_dataset(SYNTH)
    plan = plan_split(data.train.labels, 4, "random:10%", 1)
    model = original.load_model()
    masks = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 4:
                masks[name] = (torch.rand_like(p) > 0.5).float()
                p.mul_(masks[name])
    ctx = UnlearnContext(defender=model, info=data.info, train=data.train, plan=plan, device="cpu",
                         masks=masks, progress=False)
    dau_method(ctx, small(lr=0.05))
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert (params[name][mask == 0] == 0).all(), name
        assert (params[name][mask == 1] != 0).any(), name


def test_missing_original_says_which_command_makes_one(tmp_path):
    from dau.unlearn.run import unlearn

    with pytest.raises(DauError, match="dau train --dataset digits"):
        unlearn(small(), forget="class:1", dataset="digits", runs_dir=tmp_path)


def test_class_wise_dau_takes_its_stop_settings_from_the_defaults(original, tmp_path):
    from dau.data.datasets import load_dataset
    from dau.data.splits import plan_split
    from dau.unlearn import UnlearnContext
    from dau.unlearn.dau import dau_method
    from dau.unlearn.run import unlearn

    run = unlearn(small(epochs=1), forget="class:1", dataset=SYNTH, runs_dir=original.path.parent,
                  out=tmp_path / "x", progress=False)
    resolved = run.manifest["config"]["unlearn"]
    assert (resolved["stop_iter"], resolved["stop_lr"], resolved["lr"]) == (30, 0.01, 0.02)
    data = load_dataset(SYNTH)
    ctx = UnlearnContext(defender=original.load_model(), info=data.info, train=data.train,
                         plan=plan_split(data.train.labels, 4, "class:1", 1), device="cpu",
                         progress=False)
    with pytest.raises(ConfigError, match="--stop-iter"):
        dau_method(ctx, small(lr=0.01))


def test_split_of_the_unlearned_run_is_judged_by_eval(original, tmp_path):
    from dau.checkpoint import load_run
    from dau.eval.runs import evaluate_run
    from dau.unlearn.run import unlearn

    run = unlearn(small(stop_iter=1, stop_lr=0.01), forget="class:3", model=original.path,
                  runs_dir=tmp_path, progress=False)
    result = evaluate_run(load_run(run.path), device="cpu", mia=False, progress=False)
    assert result["split"]["spec"] == "class:3"
    assert result["n_samples"]["test"] == 60
    assert np.isfinite(result["UA"])
