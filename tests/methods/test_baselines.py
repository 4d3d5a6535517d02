"""The baselines beside DAU (docs/methods/): each changes the model in its own way, runs
class-wise and random, keeps a pruned model's zeros, and says what is wrong with a bad
setting. Their resumes are tested with DAU's in test_resume.py."""

import re

import pytest
import torch
import torch.nn.functional as F
from unlearn_helpers import SYNTH, small, unlearn_steps

from dau.config import UnlearnConfig
from dau.errors import ConfigError

pytestmark = pytest.mark.cpu_kernels  # make test runs it again on the AVX2 path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An original that fits and generalises (95 % test accuracy), so that what a method does
    to the forget set stands out from what fine-tuning does."""
    from dau.config import TrainConfig
    from dau.training import train

    root = tmp_path_factory.mktemp("trained")
    config = TrainConfig(dataset=SYNTH, width=0.125, epochs=12, batch_size=32, lr=0.1,
                         device="cpu")
    return train(config, runs_dir=root, out=root / "original", progress=False)


def weights(run):
    from dau.checkpoint import load_run

    return load_run(run.path).load_model().state_dict()


def run_method(original, tmp_path, method, forget="random:10%", **settings):
    from dau.methods.run import unlearn

    return unlearn(small(method=method, **settings), forget=forget, model=original.path,
                   runs_dir=tmp_path, progress=False)


def context(original, forget="random:10%", *, model=None, masks=None):
    """A method's context over the synthetic data, as dau.methods.run builds it."""
    from dau.data import load_dataset
    from dau.data.splits import plan_split
    from dau.methods import UnlearnContext

    data = load_dataset(SYNTH)
    plan = plan_split(data.train.labels, 4, forget, 1)
    return UnlearnContext(defender=model if model is not None else original.load_model(),
                          info=data.info, train=data.train, plan=plan, device="cpu",
                          masks=masks, progress=False, training=dict(original.config),
                          fresh_model=original.build_model)


def resolved(method, forget="random:10%", **settings):
    from dau.methods.defaults import resolve

    return resolve(small(method=method, **settings), "synthetic", forget.startswith("class"))


def half_masks(model):
    gen = torch.Generator().manual_seed(0)
    masks = {name: (torch.rand(p.shape, generator=gen) > 0.5).float()
             for name, p in model.named_parameters() if p.dim() == 4}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in masks:
                p.mul_(masks[name])
    return masks


def assert_pruned_stay_zero(model, masks):
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert (params[name][mask == 0] == 0).all(), name
        assert (params[name][mask == 1] != 0).any(), name


# ------------------------------------------------------------------------------ retrain --

def test_retrain_gives_the_weights_dau_train_gives_without_the_forget_set(original, tmp_path):
    from dau.config import TrainConfig
    from dau.training import train

    reference = train(TrainConfig(dataset=SYNTH, width=0.125, epochs=2, batch_size=32, lr=0.05,
                                  device="cpu", forget="class:2", exclude_forget=True),
                      runs_dir=tmp_path, out=tmp_path / "reference", progress=False)
    run = run_method(original, tmp_path, "retrain", forget="class:2", epochs=2, lr=0.05)
    a, b = weights(reference), weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the schedule is training's (milestones at 50 % and 75 % of 2 epochs: ÷100 at epoch 2)
    lrs = [r["lr"] for r in unlearn_steps(run)]
    assert lrs[0] == 0.05 and lrs[-1] == pytest.approx(0.05 / 100)
    assert run.manifest["compute"]["request"]["backward_images"] == 2 * 216 - 2 * 54


def test_retrain_does_not_depend_on_the_original_weights(original):
    from dau.methods.retrain import retrain

    config = resolved("retrain", epochs=1, lr=0.05)
    scrambled = original.load_model()
    with torch.no_grad():
        for p in scrambled.parameters():
            p.normal_()
    results = []
    for model in (original.load_model(), scrambled):
        ctx = context(original, model=model)
        retrain(ctx, config)
        results.append(model.state_dict())
    a, b = results
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a user's model (no architecture to rebuild) is re-initialised module by module
    ctx = context(original, model=scrambled)
    ctx.fresh_model = None
    retrain(ctx, config)
    assert not torch.equal(scrambled.state_dict()["fc.weight"], a["fc.weight"])


def test_retrain_takes_the_original_recipe_and_keeps_pruned_weights_at_zero(original):
    from dau.methods.defaults import resolve
    from dau.methods.retrain import retrain

    recipe = resolve(UnlearnConfig(method="retrain"), "synthetic", False,
                     training=original.config)
    assert (recipe.lr, recipe.epochs, recipe.schedule) == (0.05, 3, "multistep")
    assert resolve(UnlearnConfig(method="retrain"), "synthetic", False).epochs == 182
    model = original.load_model()
    masks = half_masks(model)
    retrain(context(original, "class:1", model=model, masks=masks), resolved("retrain", lr=0.05))
    assert_pruned_stay_zero(model, masks)


def test_multistep_is_retrain_s_schedule_only():
    with pytest.raises(ConfigError, match=r"multistep .* only --method retrain.* got --method ft"):
        UnlearnConfig(method="ft", schedule="multistep")
    UnlearnConfig(method="retrain", schedule="multistep")


# ------------------------------------------------------------------------- rl, salun --

def forget_scores(model, ctx):
    """The model's accuracy on the forget set and its mean probability of the true labels."""
    from dau.data.loaders import iterate_batches

    model.eval()
    with torch.no_grad():
        x, y = next(iterate_batches(ctx.train, ctx.plan.forget, 10_000, augment=False))
        probs = model(x)[0].softmax(1)
    return (probs.argmax(1) == y).float().mean().item(), probs[torch.arange(len(y)), y].mean().item()


def unlearned(trained, method, forget, **settings):
    """A fresh context on ``trained``, after ``method`` ran in it."""
    from dau.methods import get_method

    ctx = context(trained, forget)
    get_method(method)(ctx, resolved(method, forget, **settings))
    return ctx


@pytest.mark.parametrize("method", ["rl", "salun"])
def test_random_labels_move_forget_predictions_off_their_labels(trained, method):
    for forget in ("random:10%", "class:1"):
        ctx = context(trained, forget)
        accuracy, probability = forget_scores(ctx.defender, ctx)
        ft = forget_scores(unlearned(trained, "ft", forget, lr=0.01).defender, ctx)
        after = forget_scores(unlearned(trained, method, forget, lr=0.01).defender, ctx)
        # below the original's and fine-tuning's (by how much depends on the trained model,
        # which differs with the CPU's threads and code path)
        assert after[1] < min(probability, ft[1]), (forget, probability, ft, after)
        if forget.startswith("class"):  # a whole class: its predictions leave it
            assert after[0] < accuracy - 0.2, (accuracy, ft, after)


def test_random_labels_are_other_classes_drawn_again_each_epoch(trained):
    from dau.methods.rl import RandomLabels
    from dau.methods.steps import Batch

    ctx = context(trained, "random:20%")
    labels = RandomLabels(ctx, seed=1)
    train = ctx.plan.train
    y = ctx.train.labels[train]
    forget = torch.isin(torch.as_tensor(train), torch.as_tensor(ctx.plan.forget))
    epochs = [labels.labels(Batch(epoch, None, y, train)) for epoch in (0, 1)]
    for new in epochs:
        assert torch.equal(new[~forget], y[~forget])  # the retain samples keep theirs
        assert (new[forget] != y[forget]).all() and set(new[forget].tolist()) == {0, 1, 2, 3}
    assert not torch.equal(*epochs)
    assert torch.equal(epochs[0], RandomLabels(ctx, seed=1).labels(Batch(0, None, y, train)))


@pytest.mark.parametrize("pruned", [False, True], ids=["dense", "pruned"])
def test_salun_leaves_the_weights_outside_its_mask_bit_identical(trained, pruned):
    from dau.methods.rl import saliency_masks, salun

    model = trained.load_model()
    masks = half_masks(model) if pruned else None
    ctx = context(trained, "class:1", model=model, masks=masks)
    config = resolved("salun", "class:1", lr=0.05)
    assert (config.momentum, config.weight_decay) == (0.9, 5e-4)
    free = saliency_masks(ctx, config, 0.5)
    total = sum(m.numel() for m in free.values())
    before = {k: v.clone() for k, v in model.named_parameters()}
    summary = salun(ctx, config)
    changed = 0
    for name, p in model.named_parameters():
        assert torch.equal(p[~free[name]], before[name][~free[name]]), name
        changed += int((p != before[name]).sum())
        if masks and name in masks:
            assert not free[name][masks[name] == 0].any(), name
    assert changed > 0.2 * total
    if pruned:
        assert_pruned_stay_zero(model, masks)
    else:
        assert summary["free_fraction"] == pytest.approx(0.5, abs=1e-4)
        assert sum(int(m.sum()) for m in free.values()) == int(0.5 * total)



# ---------------------------------------------------------------------------- l1-sparse --

def l1_norm(model):
    return sum(p.abs().sum().item() for p in model.parameters())


@pytest.mark.parametrize("forget", ["random:10%", "class:1"])
def test_l1_sparse_ends_with_a_smaller_l1_norm_than_ft_with_the_same_settings(trained, forget):
    ft = unlearned(trained, "ft", forget, lr=0.01, epochs=2)
    for alpha in (5e-4, 5e-3):
        ctx = unlearned(trained, "l1-sparse", forget, lr=0.01, epochs=2, l1_alpha=alpha)
        assert l1_norm(ctx.defender) < l1_norm(ft.defender), alpha
    steps = ctx.records
    total = len(steps)
    assert [r["l1_weight"] for r in steps] == pytest.approx(
        [5e-3 * (1 - k / total) for k in range(total)])  # decays linearly over the steps


def test_l1_sparse_keeps_pruned_weights_at_zero(trained):
    from dau.methods.baselines import l1_sparse

    model = trained.load_model()
    masks = half_masks(model)
    l1_sparse(context(trained, "class:1", model=model, masks=masks),
              resolved("l1-sparse", "class:1", l1_alpha=1e-2))
    assert_pruned_stay_zero(model, masks)



# ----------------------------------------------------------------------------- neggrad+ --

def forget_loss(model, ctx):
    from dau.data.loaders import iterate_batches

    model.eval()
    with torch.no_grad():
        x, y = next(iterate_batches(ctx.train, ctx.plan.forget, 10_000, augment=False))
        return F.cross_entropy(model(x)[0], y).item()


@pytest.mark.parametrize("forget", ["random:10%", "class:1"])
def test_neggrad_plus_raises_the_forget_loss(trained, forget):
    ctx = context(trained, forget)
    before = forget_loss(ctx.defender, ctx)
    ft = forget_loss(unlearned(trained, "ft", forget, lr=0.01).defender, ctx)
    neggrad = unlearned(trained, "neggrad+", forget, lr=0.01)
    # class-wise, fine-tuning on the retain set alone already forgets the class (by how much
    # depends on the trained model, which differs with the CPU's threads and code path): the
    # loss rises above the original's; random, the ascent keeps it above fine-tuning's
    assert forget_loss(neggrad.defender, ctx) > (before if forget.startswith("class") else ft)
    assert all(r["forget_loss"] > 0 and r["retain_loss"] > 0 for r in neggrad.records)
    # with α = 1 the forget batches only pass through: the weights are ft's
    only_retain = unlearned(trained, "neggrad+", forget, lr=0.01, neggrad_alpha=1.0)
    ft_params = dict(unlearned(trained, "ft", forget, lr=0.01).defender.named_parameters())
    for name, p in only_retain.defender.named_parameters():
        assert torch.equal(p, ft_params[name]), name


def test_neggrad_plus_keeps_pruned_weights_at_zero(trained):
    from dau.methods.neggrad import neggrad_plus

    model = trained.load_model()
    masks = half_masks(model)
    neggrad_plus(context(trained, "class:1", model=model, masks=masks),
                 resolved("neggrad+", "class:1", forget_batch_size=8))
    assert_pruned_stay_zero(model, masks)



# -------------------------------------------------------------------------------- scrub --

def forget_kl(model, ctx, teacher):
    """KL(teacher ‖ model) on the forget set (both in eval mode, temperature 4)."""
    from dau.data.loaders import iterate_batches
    from dau.methods.scrub import distill_kl

    model.eval()
    with torch.no_grad():
        x, _ = next(iterate_batches(ctx.train, ctx.plan.forget, 10_000, augment=False))
        return distill_kl(model(x)[0], teacher(x)[0], 4.0).item()


@pytest.mark.parametrize("forget", ["random:30%", "class:1"])
def test_scrub_s_max_passes_raise_the_forget_kl_to_the_teacher(trained, forget):
    teacher = trained.load_model().eval()
    settings = dict(lr=0.01, epochs=2, forget_batch_size=32)
    ctx = context(trained, forget)
    min_only = forget_kl(unlearned(trained, "scrub", forget, scrub_msteps=0, **settings).defender,
                         ctx, teacher)
    run = unlearned(trained, "scrub", forget, scrub_msteps=1, **settings)
    assert forget_kl(run.defender, ctx, teacher) > 1.5 * min_only  # 1.9-4x, by trained model
    # epoch 1: a max pass over the forget set, then a min pass over the retain set; epoch 2
    # (past msteps): the min pass only
    forget_steps, retain_steps = -(-len(ctx.plan.forget) // 32), -(-len(ctx.plan.retain) // 32)
    assert [(r["epoch"], r["pass"]) for r in run.records] == (
        [(1, "max")] * forget_steps + [(1, "min")] * retain_steps + [(2, "min")] * retain_steps)
    assert all(r["loss"] == -r["kl"] for r in run.records if r["pass"] == "max")


def test_scrub_keeps_pruned_weights_at_zero_and_counts_the_teacher_s_passes(trained):
    from dau.methods.scrub import scrub

    model = trained.load_model()
    masks = half_masks(model)
    ctx = context(trained, "class:1", model=model, masks=masks)
    scrub(ctx, resolved("scrub", "class:1", lr=0.01))
    assert_pruned_stay_zero(model, masks)
    steps = len(ctx.records)
    images = len(ctx.plan.forget) + len(ctx.plan.retain)  # one epoch
    compute = ctx.compute()["request"]
    assert steps > 2 and compute["forward_images"] == 2 * images  # student and teacher
    assert compute["backward_images"] == images



@pytest.mark.parametrize("cut", [5, 12, 20], ids=["max-pass", "min-pass", "second-max-pass"])
def test_scrub_resumes_inside_either_pass(original, tmp_path, monkeypatch, cut):
    from test_resume import ALWAYS, interrupt_at

    from dau.methods.run import resume, unlearn

    # class 1: 9 max steps (forget batches of 6), then 6 min steps, in each of 2 epochs
    config = small(method="scrub", epochs=2, forget_batch_size=6)
    kw = dict(forget="class:1", model=original.path, runs_dir=tmp_path, progress=False)
    full = unlearn(config, out=tmp_path / "full", **kw)
    assert [r["pass"] for r in unlearn_steps(full)] == (["max"] * 9 + ["min"] * 6) * 2
    interrupt_at(monkeypatch, cut)
    with pytest.raises(KeyboardInterrupt):
        unlearn(config, out=tmp_path / "cut", checkpoint_seconds=ALWAYS, **kw)
    monkeypatch.undo()
    done = resume(tmp_path / "cut", progress=False)
    assert done.manifest["resumed"][0]["from_step"] == cut - 1
    assert unlearn_steps(done) == unlearn_steps(full)
    a, b = weights(full), weights(done)
    assert all(torch.equal(a[k], b[k]) for k in a)



# ---------------------------------------------------------------------------------- ssd --

@pytest.mark.parametrize("forget", ["random:10%", "class:1"])
@pytest.mark.parametrize("pruned", [False, True], ids=["dense", "pruned"])
def test_ssd_dampens_only_what_the_forget_set_depends_on_most(trained, forget, pruned):
    from dau.methods.ssd import importances, ssd

    model = trained.load_model()
    masks = half_masks(model) if pruned else None
    ctx = context(trained, forget, model=model, masks=masks)
    config = resolved("ssd", forget)
    assert (config.ssd_alpha, config.ssd_lambda) == (10.0, 1.0)
    on_forget = importances(ctx, ctx.plan.forget, config.batch_size)
    on_train = importances(ctx, ctx.plan.train, config.batch_size)
    before = {k: v.clone() for k, v in model.named_parameters()}
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    summary = ssd(ctx, config)
    dampened = 0
    for name, p in model.named_parameters():
        selected = on_forget[name] > 10 * on_train[name]
        if pruned and name in masks:
            selected &= masks[name] != 0
        assert torch.equal(p[~selected], before[name][~selected]), name
        factor = (on_train[name] / on_forget[name]).clamp(max=1)
        assert torch.equal(p[selected], before[name][selected] * factor[selected]), name
        dampened += int(selected.sum())
    assert summary["selected"] == dampened > 0
    assert all(torch.equal(v, buffers[k]) for k, v in model.named_buffers())  # eval mode
    assert len(ctx.records) == len(before) and {r["phase"] for r in ctx.records} == {"unlearn"}
    if pruned:
        assert_pruned_stay_zero(model, masks)


def test_ssd_is_deterministic_and_lowers_a_forgotten_class_s_probability(trained):
    runs = [unlearned(trained, "ssd", "class:1", ssd_alpha=2.0) for _ in range(2)]
    a, b = (r.defender.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ctx = context(trained, "class:1")
    assert forget_scores(runs[0].defender, ctx)[1] < forget_scores(ctx.defender, ctx)[1]



# ----------------------------------------------------------------------------------- bs --

def test_the_nearest_wrong_class_is_where_one_fgsm_step_lands_and_never_the_label(trained):
    from dau.data.loaders import iterate_batches
    from dau.methods.boundary import nearest_wrong_class

    model = trained.load_model().eval()
    x, y = next(iterate_batches(context(trained).train, range(64), 64, augment=False))
    labels, crossed = nearest_wrong_class(model, x, y, 0.1)
    assert (labels != y).all() and 0 < crossed < 1
    # a step so large that every prediction leaves its label: the labels are the predictions
    # at the moved points (their sign images)
    far, crossed = nearest_wrong_class(model, x, y, 1.0)
    x_far = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x_far)[0], y), x_far)
    predicted = model((grad.sign() > 0).float())[0].argmax(1)
    left = predicted != y
    assert torch.equal(far[left], predicted[left]) and crossed == left.float().mean().item()


@pytest.mark.parametrize("forget", ["random:10%", "class:1"])
def test_bs_moves_forget_predictions_off_their_labels(trained, forget):
    ctx = context(trained, forget)
    accuracy, probability = forget_scores(ctx.defender, ctx)
    ft = forget_scores(unlearned(trained, "ft", forget, lr=0.01).defender, ctx)
    bs = unlearned(trained, "bs", forget, lr=0.01, epochs=5)
    after = forget_scores(bs.defender, ctx)
    assert after[0] < accuracy and after[1] < min(0.95 * probability, ft[1]), \
        (accuracy, probability, ft, after)
    assert all(0 <= r["crossed"] <= 1 for r in bs.records)
    assert bs.compute()["request"]["backward_images"] == 2 * 5 * len(ctx.plan.forget)  # attack too



# --------------------------------------------------------------------------------- amun --

def test_amun_s_adversarial_examples_are_near_and_labelled_with_a_wrong_class(trained):
    from dau.data.loaders import iterate_batches
    from dau.methods.amun import adversarial_examples

    ctx = context(trained, "class:1")
    found = adversarial_examples(ctx, resolved("amun", "class:1", amun_steps=10))
    x, y = next(iterate_batches(ctx.train, ctx.plan.forget, 10_000, augment=False))
    distance = (found["images"] - x).flatten(1).norm(dim=1)
    hit = found["found"]
    assert hit.float().mean() >= 0.5 and (found["labels"] != y).all()
    assert (distance <= found["budgets"] * (1 + 1e-5)).all()
    assert distance.max() < 0.5 * x.flatten(1).norm(dim=1).min()  # near their samples
    model = trained.load_model().eval()
    with torch.no_grad():  # the original's own prediction there, where one was found
        assert torch.equal(model(found["images"])[0].argmax(1)[hit], found["labels"][hit])
    # one budget too small and no second: the highest wrong class where none was found
    few = adversarial_examples(ctx, resolved("amun", "class:1", amun_eps=1e-4, amun_steps=2,
                                             amun_rounds=1))
    assert not few["found"].all() and (few["labels"] != y).all()


@pytest.mark.parametrize("forget", ["random:10%", "class:1"])
def test_amun_lowers_the_forget_samples_confidence(trained, forget):
    ctx = context(trained, forget)
    _, probability = forget_scores(ctx.defender, ctx)
    run = unlearned(trained, "amun", forget, lr=0.01, epochs=2, amun_steps=10)
    after = forget_scores(run.defender, ctx)[1]
    # class-wise the confidence falls; random, it moved by under 1 % either way on the models
    # trained on different CPU paths, so only the schedule is checked there
    if forget.startswith("class"):
        assert after < 0.97 * probability, (after, probability)
    shares = [r["adversarial"] for r in run.records]
    assert sum(shares) == 2 * len(ctx.plan.forget)  # each epoch all of them, spread over its steps
    assert max(shares) - min(shares) <= max(shares) // 2 + 1


# -------------------------------------------------------------- settings and forget sets --

IN_0_1 = r"expected a number in \(0, 1\]"
BAD_SETTINGS = [  # (method, setting, value, what the error says after the option's name)
    ("salun", "salun_fraction", 0.0, rf"{IN_0_1}, got 0\.0"),
    ("salun", "salun_fraction", 1.5, rf"{IN_0_1}, got 1\.5"),
    ("rl", "salun_fraction", 0.5, "applies to --method salun only; got --method rl"),
    ("l1-sparse", "l1_alpha", -1e-4, r"expected a non-negative number, got -0\.0001"),
    ("l1-sparse", "l1_alpha", float("nan"), "expected a non-negative number, got nan"),
    ("neggrad+", "neggrad_alpha", 1.2, r"expected a number in \[0, 1\], got 1\.2"),
    ("neggrad+", "forget_batch_size", 0, "expected an integer of at least 1, got 0"),
    ("neggrad+", "forget_batch_size", 2.5, "expected an integer of at least 1, got 2.5"),
    ("ft", "forget_batch_size", 32, "applies to --method neggrad\\+ and scrub only"),
    ("scrub", "scrub_msteps", -1, "expected an integer of at least 0, got -1"),
    ("scrub", "scrub_temperature", 0.0, "expected a positive number, got 0.0"),
    ("scrub", "scrub_ce_weight", -1.0, "expected a non-negative number, got -1.0"),
    ("scrub", "scrub_kl_weight", float("inf"), "expected a non-negative number, got inf"),
    ("ssd", "ssd_alpha", 0.0, "expected a positive number, got 0.0"),
    ("ssd", "ssd_lambda", -1.0, "expected a positive number, got -1.0"),
    ("bs", "bs_bound", 0.0, rf"{IN_0_1}, got 0\.0"),
    ("bs", "bs_bound", 2.0, rf"{IN_0_1}, got 2\.0"),
    ("amun", "amun_eps", -0.1, r"expected a positive number, got -0\.1"),
    ("amun", "amun_steps", 0, "expected an integer of at least 1, got 0"),
    ("amun", "amun_rounds", 0, "expected an integer of at least 1, got 0"),
]


@pytest.mark.parametrize(("method", "name", "value", "message"), BAD_SETTINGS,
                         ids=[f"{m}-{n}={v}" for m, n, v, _ in BAD_SETTINGS])
def test_a_bad_setting_names_the_option_what_it_expects_and_what_it_got(method, name, value,
                                                                         message):
    option = "--" + name.replace("_", "-")
    with pytest.raises(ConfigError, match=f"^{option}: {message}"):
        UnlearnConfig(method=method, **{name: value})


NEED_FORGET = ["ga", "rl", "salun", "neggrad+", "scrub", "ssd", "bs", "amun"]


@pytest.mark.parametrize("method", NEED_FORGET)
def test_a_method_that_needs_a_forget_set_says_so(original, method):
    from dau.methods import get_method

    with pytest.raises(ConfigError, match=re.escape(f"--method {method} needs a non-empty forget")):
        get_method(method)(context(original, "none"), resolved(method))


BASELINES = ["retrain", "rl", "salun", "l1-sparse", "neggrad+", "scrub", "ssd", "bs", "amun"]


@pytest.mark.parametrize("method", BASELINES)
def test_every_baseline_runs_through_dau_unlearn_class_wise_and_random(original, tmp_path, method):
    before = original.load_model().state_dict()
    quick = dict(amun_steps=10) if method == "amun" else {}
    for forget in ("class:1", "random:10%"):
        run = run_method(original, tmp_path, method, forget=forget, **quick)
        assert run.manifest["status"] == "complete" and run.manifest["kind"] == method
        assert run.manifest["config"]["unlearn"]["method"] == method
        steps = unlearn_steps(run)
        assert steps and run.manifest["summary"]
        assert run.manifest["compute"]["request"]["forward_images"] > 0
        after = weights(run)
        assert any(not torch.equal(before[k], after[k]) for k in before), forget


def test_the_baselines_settings_are_options_of_dau_unlearn(original, tmp_path, cli):
    import json

    from dau.checkpoint import load_run

    base = ["unlearn", "--model", str(original.path), "--forget", "random:10%", "--epochs", "1",
            "--batch-size", "32", "--device", "cpu", "-q"]
    code, _, err = cli(*base, "--method", "salun", "--salun-fraction", "1.5")
    assert code != 0 and "--salun-fraction: expected a number in (0, 1], got 1.5" in err
    code, out, err = cli(*base, "--method", "neggrad+", "--neggrad-alpha", "0.9", "--json",
                         "-o", str(tmp_path / "neggrad"))
    assert code == 0, err
    config = load_run(json.loads(out)["run"]).manifest["config"]["unlearn"]
    assert (config["neggrad_alpha"], config["lr"], config["salun_fraction"]) == (0.9, 0.01, None)
