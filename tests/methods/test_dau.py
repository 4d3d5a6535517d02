import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from unlearn_helpers import SYNTH, small, unlearn_steps

from dau.config import UnlearnConfig
from dau.errors import ConfigError, DauError
from dau.methods.dau import NoiseStream, Probe, attacker_input, draw_batch, frozen_bn_stats
from dau.models.attacker import create_attacker
from dau.ops import cross_correlation_loss
from dau.ops.reference import counter_normal

pytestmark = pytest.mark.cpu_kernels  # make test runs it again on the AVX2 path


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


@pytest.mark.parametrize("mode", ["fd", "jvp"])
@pytest.mark.parametrize("merged", [True, False])
def test_sensitivity_of_a_linear_model_is_the_mean_abs_projection_of_the_noise(mode, merged):
    torch.manual_seed(0)
    model, x = Linear(), torch.rand(5, 1, 3, 4)
    y = torch.tensor([0, 1, 2, 0, 1])
    probe = Probe(copies=7, sigma=1e-2, sensitivity=mode, kernels="reference", merged=merged)
    noise = NoiseStream(seed=3, offset=11)
    rows, features = attacker_input(model, x, y, num_classes=3, probe=probe, noise=noise)
    assert noise.offset == 11 + 7 * x.numel()  # the next call draws fresh noise
    u = counter_normal(3, torch.arange(11, 11 + 7 * x.numel())).float().view(35, 12)
    expected = (u @ model.fc.weight.T).abs().view(7, 5, 3).mean(0)
    logits, _ = model(x)
    assert torch.allclose(rows[:, :3], logits, atol=1e-6) and torch.equal(features, x.flatten(1))
    assert rows[:, 3:6].tolist() == F.one_hot(y, 3).tolist()
    assert torch.allclose(rows[:, 6:], expected, atol=1e-3 if mode == "fd" else 1e-5)


def test_cross_correlation_loss_survives_a_dead_feature():
    v, f = torch.randn(8, 4), torch.randn(8, 4)
    v[:, 2] = 0.0  # a dead channel, as in a 95 %-sparse net
    assert torch.isfinite(cross_correlation_loss(v, f, 5e-3, 1e-5, kernels="reference"))
    assert torch.isnan(cross_correlation_loss(v, f, 5e-3, 0.0, kernels="reference"))  # the reference


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


def test_class_wise_dau_stops_the_adversarial_branch(original, tmp_path):
    from dau.methods.run import unlearn

    run = unlearn(small(epochs=2, stop_iter=3, stop_lr=0.005), forget="class:1",
                  model=original.path, runs_dir=tmp_path, out=tmp_path / "u", progress=False)
    assert run.manifest["status"] == "complete" and run.manifest["kind"] == "dau"
    assert run.manifest["parent"] == str(original.path.resolve())
    steps = unlearn_steps(run)
    assert [r["beta"] for r in steps[:4]] == [1.0, 1.0, 1.0, 0.0]
    assert all("adv_loss" not in r for r in steps[3:]) and all(r["lr"] == 0.005 for r in steps[3:])
    # the defender's accuracy on each adversarial step's forget and validation batches
    assert all(0.0 <= r[k] <= 1.0 for r in steps[:3] for k in ("forget_batch_acc", "val_batch_acc"))
    assert run.manifest["summary"]["adversarial_steps"] == 3
    assert run.manifest["summary"]["attacker"]["source"] == "trained"
    assert run.manifest["timings"]["unlearn_seconds"] > 0
    # the second run reuses the cached attacker
    again = unlearn(small(stop_iter=1, stop_lr=0.005), forget="class:2", model=original.path,
                    runs_dir=tmp_path, progress=False)
    assert again.manifest["summary"]["attacker"]["source"] == "cache"
    # an attacker pretrained on differently normalised features is not
    other = unlearn(small(stop_iter=1, stop_lr=0.005, adversarial_bn="running"), forget="class:2",
                    model=original.path, runs_dir=tmp_path, progress=False)
    assert other.manifest["summary"]["attacker"]["source"] == "trained"
    # training the defender through the forget passes only leaves pretraining unchanged
    only = unlearn(small(stop_iter=1, stop_lr=0.005, adversarial_targets="forget"),
                   forget="class:2", model=original.path, runs_dir=tmp_path, progress=False)
    assert only.manifest["summary"]["attacker"]["source"] == "cache"
    assert only.manifest["config"]["unlearn"]["adversarial_targets"] == "forget"


def test_random_dau_and_baselines_change_the_model(original, tmp_path):
    from dau.checkpoint import load_run
    from dau.methods.run import unlearn

    before = original.load_model().state_dict()
    for method in ("dau", "ft", "ga"):
        run = unlearn(small(method=method), forget="random:10%", model=original.path,
                      runs_dir=tmp_path, progress=False)
        after = load_run(run.path).load_model().state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before), method


def test_cosine_schedule_decays_from_each_learning_rate_to_zero(original, tmp_path):
    import itertools
    import math

    from dau.methods.run import unlearn

    def lrs(run):
        return [r["lr"] for r in unlearn_steps(run)]

    dau = lrs(unlearn(small(epochs=2, lr=0.02, stop_iter=3, stop_lr=0.005, schedule="cosine"),
                      forget="class:1", model=original.path, runs_dir=tmp_path, progress=False))
    total = len(dau)

    def cosine(base, step):
        return base * (1 + math.cos(math.pi * (step - 1) / total)) / 2

    assert dau[0] == 0.02 and total > 4
    assert dau == pytest.approx([cosine(0.02 if step <= 3 else 0.005, step)
                                 for step in range(1, total + 1)])
    ft = lrs(unlearn(small(method="ft", lr=0.01, schedule="cosine"), forget="random:10%",
                     model=original.path, runs_dir=tmp_path, progress=False))
    assert ft[0] == 0.01 and all(a > b > 0 for a, b in itertools.pairwise(ft))
    constant = lrs(unlearn(small(method="ft", lr=0.01), forget="random:10%",
                           model=original.path, runs_dir=tmp_path, progress=False))
    assert set(constant) == {0.01}


def test_adversarial_every_n_steps_trains_on_the_retain_batch_alone_between(original, tmp_path):
    from dau.methods.run import unlearn

    run = unlearn(small(adversarial_every=3), forget="random:10%", model=original.path,
                  runs_dir=tmp_path, progress=False)
    steps = unlearn_steps(run)
    adversarial = [r["step"] for r in steps if "adv_loss" in r]
    assert len(steps) > 4 and adversarial == list(range(1, len(steps) + 1, 3))
    assert [r["beta"] for r in steps] == [1.0 if r["step"] in adversarial else 0.0 for r in steps]
    assert all("attacker_loss" not in r for r in steps if r["step"] not in adversarial)
    assert run.manifest["summary"]["adversarial_steps"] == len(adversarial)
    assert run.manifest["config"]["unlearn"]["adversarial_every"] == 3


def test_dau_keeps_pruned_weights_at_zero(original):
    from dau.data import load_dataset
    from dau.data.splits import plan_split
    from dau.methods import UnlearnContext
    from dau.methods.dau import dau_method

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
    from dau.methods.run import unlearn

    with pytest.raises(DauError, match="dau train --dataset digits"):
        unlearn(small(), forget="class:1", dataset="digits", runs_dir=tmp_path)


def test_defaults_are_per_dataset_and_mode_and_flags_win():
    from dau.methods.defaults import resolve

    def key(c):
        return c.lr, c.epochs, c.stop_iter, c.stop_lr

    assert key(resolve(UnlearnConfig(), "fashion-mnist", True)) == (0.02, 3, 60, 0.01)
    assert key(resolve(UnlearnConfig(), "fashion-mnist", False)) == (0.05, 3, None, None)
    assert key(resolve(UnlearnConfig(), "fashion-mnist", True, sparse=True)) == (0.02, 8, 100, 0.05)
    assert key(resolve(UnlearnConfig(), "fashion-mnist", False, sparse=True)) == (0.05, 3, None, None)
    assert key(resolve(UnlearnConfig(), "cifar100", True, sparse=True)) == (0.02, 5, 30, 0.02)
    assert key(resolve(UnlearnConfig(), "cifar100", True)) == (0.02, 5, 30, 0.02)
    assert key(resolve(UnlearnConfig(), "svhn", True)) == (0.02, 3, 30, 0.01)  # CIFAR-10's
    assert key(resolve(UnlearnConfig(stop_iter=20, epochs=1), "fashion-mnist", True)) == (
        0.02, 1, 20, 0.01)


def test_behaviour_defaults_are_per_dataset_then_the_reference_s():
    from dau.config import REFERENCE_BEHAVIOUR
    from dau.methods.defaults import resolve

    def behaviour(c):
        return {k: getattr(c, k) for k in REFERENCE_BEHAVIOUR}

    recipe = dict(schedule="cosine", adversarial_targets="forget", adversarial_every=3,
                  adv_weight=3.0, stop_rule="fixed")
    assert behaviour(resolve(UnlearnConfig(), "fashion-mnist", False)) == recipe
    # datasets and modes without measured behaviour run as the reference, FT too
    for dataset, classwise, method in (("fashion-mnist", True, "dau"), ("cifar10", False, "dau"),
                                       ("fashion-mnist", False, "ft")):
        resolved = resolve(UnlearnConfig(method=method), dataset, classwise)
        assert behaviour(resolved) == REFERENCE_BEHAVIOUR
    # a flag wins over its field of the recipe only
    mixed = resolve(UnlearnConfig(adversarial_targets="both", adv_weight=0.5), "fashion-mnist",
                    False)
    assert behaviour(mixed) == {**recipe, "adversarial_targets": "both", "adv_weight": 0.5}
    # --reference-compat runs the reference's seed command where a recipe departs from it
    compat = resolve(UnlearnConfig(reference_compat=True), "fashion-mnist", False)
    assert behaviour(compat) == REFERENCE_BEHAVIOUR
    assert (compat.lr, compat.epochs) == (0.01, 3)
    assert resolve(UnlearnConfig(reference_compat=True), "fashion-mnist", True).stop_iter == 60
    # an unresolved config runs as the reference
    assert behaviour(UnlearnConfig().filled()) == REFERENCE_BEHAVIOUR


def test_class_wise_dau_takes_its_stop_settings_from_the_defaults(original, tmp_path):
    from dau.data import load_dataset
    from dau.data.splits import plan_split
    from dau.methods import UnlearnContext
    from dau.methods.dau import dau_method
    from dau.methods.run import unlearn

    run = unlearn(small(epochs=1), forget="class:1", dataset=SYNTH, runs_dir=original.path.parent,
                  out=tmp_path / "x", progress=False)
    resolved = run.manifest["config"]["unlearn"]
    assert (resolved["stop_iter"], resolved["stop_lr"], resolved["lr"]) == (30, 0.01, 0.02)
    assert (resolved["schedule"], resolved["adversarial_targets"], resolved["adversarial_every"],
            resolved["adv_weight"]) == ("constant", "both", 1, 0.9)  # recorded as run
    data = load_dataset(SYNTH)
    ctx = UnlearnContext(defender=original.load_model(), info=data.info, train=data.train,
                         plan=plan_split(data.train.labels, 4, "class:1", 1), device="cpu",
                         progress=False)
    with pytest.raises(ConfigError, match="--stop-iter"):
        dau_method(ctx, small(lr=0.01))


def test_split_of_the_unlearned_run_is_judged_by_eval(original, tmp_path):
    from dau.checkpoint import load_run
    from dau.eval.runs import evaluate_run
    from dau.methods.run import unlearn

    run = unlearn(small(stop_iter=1, stop_lr=0.01), forget="class:3", model=original.path,
                  runs_dir=tmp_path, progress=False)
    result = evaluate_run(load_run(run.path), device="cpu", mia=False, progress=False)
    assert result["split"]["spec"] == "class:3"
    assert result["n_samples"]["test"] == 60
    assert np.isfinite(result["UA"])


# ---- the step on dau's ops: fused vs reference kernels, fd vs jvp, BatchNorm, precision ----


def resnet(dtype=torch.float32):
    from dau.models import create_model

    torch.manual_seed(0)
    return create_model("resnet18", num_classes=4, in_channels=1, width=0.125).to(dtype).train()


def batch(n=12, dtype=torch.float32):
    gen = torch.Generator().manual_seed(5)
    return torch.rand(n, 1, 8, 8, generator=gen, dtype=dtype), torch.arange(n) % 4


def inputs(model, probe, x, y):
    return attacker_input(model, x, y, num_classes=4, probe=probe, noise=NoiseStream(seed=9))


def relative(a, b):
    return float((a - b).detach().norm() / b.detach().norm())


@pytest.mark.parametrize("merged", [True, False])
def test_fd_and_jvp_give_the_same_sensitivity_in_the_limit(merged):
    model, (x, y) = resnet(torch.float64), batch(dtype=torch.float64)
    fd, _ = inputs(model, Probe(copies=3, sigma=1e-7, kernels="reference", merged=merged), x, y)
    jvp, _ = inputs(model, Probe(copies=3, sensitivity="jvp", kernels="reference", merged=merged),
                    x, y)
    assert relative(fd[:, :8], jvp[:, :8]) < 1e-6  # logits, one-hot
    assert relative(fd[:, 8:], jvp[:, 8:]) < 1e-3  # ReLU kinks crossed by σu make the rest
    assert (jvp[:, 8:] > 0).all()


def test_one_merged_pass_differs_from_separate_passes_only_by_the_batchnorm_drift():
    model, (x, y) = resnet(torch.float64), batch(dtype=torch.float64)
    merged, f_merged = inputs(model, Probe(copies=4, kernels="reference"), x, y)
    apart, f_apart = inputs(model, Probe(copies=4, kernels="reference", merged=False), x, y)
    # Clean logits and features: the statistics of the batch and its σ-noisy copies are
    # the clean batch's up to O(σ) (4e-3 relative here, at B = 12; less for larger B).
    assert relative(merged[:, :4], apart[:, :4]) < 2e-2 and relative(f_merged, f_apart) < 2e-2
    # The sensitivity differs by the separate noisy pass's statistic drift, O(1/sqrt(B)).
    assert 1e-4 < relative(merged[:, 8:], apart[:, 8:]) < 0.3


@pytest.mark.parametrize("mode", ["fd", "jvp"])
@pytest.mark.parametrize("compat", [False, True])
def test_adversarial_passes_leave_batchnorm_running_statistics_unless_compat(mode, compat):
    from dau.methods.dau import AdversarialBatch

    model, (x, y) = resnet(), batch()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probe = Probe(copies=2, sensitivity=mode, kernels="reference", merged=not compat,
                  bn="update" if compat else "batch")
    adv = AdversarialBatch.build(model, (x[:6], y[:6]), (x[6:], y[6:]), num_classes=4,
                                 probe=probe, noise=NoiseStream(seed=1))
    assert adv.rows.shape == (12, 12) and adv.membership.tolist() == [1] * 6 + [0] * 6
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    if compat:
        # clean and noisy passes of forget and val: 4 updates, as the reference
        assert changed and int(after["bn1.num_batches_tracked"]) == 4
    else:
        assert changed == []


@pytest.mark.parametrize("mode", ["fd", "jvp"])
def test_running_bn_passes_see_the_deployed_model(mode):
    from dau.methods.dau import AdversarialBatch

    model, (x, y) = resnet(), batch()
    with torch.no_grad():  # running statistics unlike any batch's, as after training
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    forget, val = (x[:6], y[:6]), (x[6:], y[6:])

    def build(bn):
        probe = Probe(copies=2, sensitivity=mode, kernels="reference", bn=bn)
        return AdversarialBatch.build(model, forget, val, num_classes=4, probe=probe,
                                      noise=NoiseStream(seed=1))

    adv = build("running")
    assert all(m.training for m in model.modules())  # the modes are restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    adv.rows[:, 8:].sum().backward()  # the sensitivity stays differentiable
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    with torch.no_grad():
        deployed = torch.cat([model.eval()(forget[0])[0], model(val[0])[0]])
    model.train()
    assert torch.allclose(adv.rows[:, :4], deployed, atol=1e-5)
    # batch statistics (the reference) see another model
    assert not torch.allclose(build("batch").rows[:, :4], deployed, atol=1e-2)


@pytest.mark.parametrize("mode", ["fd", "jvp"])
def test_forget_only_targets_leave_the_validation_passes_without_a_graph(mode):
    from dau.methods.dau import AdversarialBatch

    model, (x, y) = resnet(), batch()
    forget, val = (x[:6], y[:6]), (x[6:], y[6:])
    params = [p for p in model.parameters() if p.requires_grad]

    def build(val_grad):
        probe = Probe(copies=2, sensitivity=mode, kernels="reference", val_grad=val_grad)
        return AdversarialBatch.build(model, forget, val, num_classes=4, probe=probe,
                                      noise=NoiseStream(seed=1))

    both, only = build(True), build(False)
    assert torch.allclose(both.rows, only.rows, atol=1e-5)  # the same attacker input
    assert only.forget_features.requires_grad and not only.val_features.requires_grad

    def grad_norm(rows):  # of the defender's parameters
        grads = torch.autograd.grad(rows.sum(), params, allow_unused=True, retain_graph=True)
        return sum(float(g.abs().sum()) for g in grads if g is not None)

    assert grad_norm(both.rows[6:]) > 0 and grad_norm(only.rows[6:]) == 0.0
    assert grad_norm(only.rows[:6]) > 0


def test_missing_cuda_kernels_say_how_to_build_or_use_the_reference(monkeypatch):
    from dau.errors import KernelUnavailableError
    from dau.methods.dau import require_kernels
    from dau.ops import _library

    monkeypatch.setattr(_library, "_has_kernel", lambda op, key: False)
    with pytest.raises(KernelUnavailableError, match="DAU_CUDA=1") as err:
        require_kernels("cuda:0")
    assert "--kernels reference" in str(err.value)
    require_kernels("cpu")  # the CPU kernels are there


def test_ieee_float32_switches_tf32_off_and_restores_it():
    from dau.numerics import float32_settings, ieee_float32

    before = float32_settings()
    with pytest.raises(RuntimeError), ieee_float32():
        assert float32_settings() == {"cudnn_conv": "ieee", "cuda_matmul": "ieee"}
        raise RuntimeError("restored anyway")
    assert float32_settings() == before


class Spy(nn.Module):
    """A tiny defender that notes the float32 settings of each forward pass."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 4)
        self.seen = []

    def forward(self, x):
        from dau.numerics import float32_settings

        self.seen.append(float32_settings()["cudnn_conv"])
        return self.fc(x.flatten(1)), x.flatten(1)


@pytest.mark.parametrize(("mode", "adversarial"), [("fd", "ieee"), ("jvp", None)])
def test_adversarial_steps_run_in_ieee_float32_with_finite_differences(mode, adversarial):
    from dau.methods.dau import DauStep
    from dau.numerics import float32_settings

    default = float32_settings()["cudnn_conv"]
    defender = Spy()
    attacker = create_attacker("transformer", num_classes=4)
    config = small(kernels="reference", sensitivity=mode)
    step = DauStep(defender=defender, attacker=attacker,
                   defender_opt=torch.optim.SGD(defender.parameters(), lr=0.01),
                   attacker_opt=torch.optim.Adam(attacker.parameters()), config=config,
                   num_classes=4, noise=NoiseStream(seed=1))
    x, y = batch()
    record = step((x, y), ((x[:6], y[:6]), (x[6:], y[6:])), 1.0)
    assert {"attacker_loss", "adv_loss", "bt_loss", "loss"} <= set(record)
    assert set(defender.seen) == {adversarial or default}
    defender.seen.clear()
    record = step((x, y), None, 0.0)  # after a class-wise stop: the global settings
    assert defender.seen == [default] and "adv_loss" not in record


@pytest.fixture(scope="module")
def fused_ops():
    """The compiled kernels of the DAU step (a missing build fails, saying how to build)."""
    import dau.ops
    from dau.methods.dau import require_kernels

    dau.ops.load()
    require_kernels("cpu")


@pytest.mark.parametrize("mode", ["fd", "jvp"])
def test_fused_and_reference_kernels_give_the_same_attacker_input(fused_ops, mode):
    results = []
    for kernels in ("fused", "reference"):
        model, (x, y) = resnet(), batch()
        rows, features = inputs(model, Probe(copies=3, sensitivity=mode, kernels=kernels), x, y)
        (rows.square().sum() + features.sum()).backward()
        results.append((rows, features, model.conv1.weight.grad))
    for fused, reference in zip(*results, strict=True):
        # float rounding of x + σu, divided by σ: ~1e-5 relative
        assert relative(fused, reference) < 1e-4


def test_a_whole_unlearning_run_gives_the_same_model_with_either_kernels(fused_ops, original,
                                                                          tmp_path):
    """A short random-forgetting run, σ = 0.05, small lr. The min-max amplifies float
    rounding (at σ = 1e-3 the finite differences' cancellation amplifies it ~1000×: two
    runs with the same kernels whose weights differ by 1e-7 end 6 % apart after 6 steps),
    so a tight comparison needs a well-conditioned run."""
    from dau.methods.run import unlearn

    models, logs = [], []
    for kernels in ("fused", "reference"):
        run = unlearn(small(kernels=kernels, sigma=0.05, lr=0.002), forget="random:10%",
                      model=original.path, runs_dir=tmp_path, progress=False)
        assert run.manifest["config"]["unlearn"]["kernels"] == kernels
        models.append(run.load_model().state_dict())
        logs.append([r for r in map(json.loads, (run.path / "log.jsonl").read_text().splitlines())
                     if r["phase"] == "unlearn"])
    fused, reference = logs
    assert len(fused) == len(reference) == 7 and all("adv_loss" in r for r in fused)
    for a, b in zip(fused, reference, strict=True):
        for key in ("loss", "adv_loss", "bt_loss", "attacker_loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-3), (a["step"], key)
    for key, value in models[0].items():
        if value.is_floating_point():
            assert relative(value, models[1][key]) < 1e-3, key


def test_the_run_manifest_records_the_precision_policy(original, tmp_path):
    from dau.methods.run import unlearn

    run = unlearn(small(stop_iter=1, stop_lr=0.01, kernels="reference", sensitivity="jvp"),
                  forget="class:2", model=original.path, runs_dir=tmp_path, progress=False)
    numerics = run.manifest["summary"]["numerics"]
    assert numerics["sensitivity"] == "jvp" and "global_float32" in numerics
    assert run.manifest["config"]["unlearn"]["sensitivity"] == "jvp"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("kernels", ["fused", "reference"])
def test_the_attacker_input_on_cuda_matches_the_cpu(kernels):
    from dau.numerics import ieee_float32

    model, (x, y) = resnet(), batch()
    cpu, _ = inputs(model, Probe(copies=3, sigma=0.05, kernels=kernels), x, y)
    with ieee_float32():
        cuda, _ = inputs(model.cuda(), Probe(copies=3, sigma=0.05, kernels=kernels), x.cuda(), y.cuda())
    assert relative(cuda.cpu(), cpu) < 1e-4  # same counter-based noise on both devices
