"""The baselines beside DAU (docs/methods/): each changes the model in its own way, runs
class-wise and random, keeps a pruned model's zeros, and says what is wrong with a bad
setting. Their resumes are tested with DAU's in test_resume.py."""

import pytest
import torch
from unlearn_helpers import SYNTH, small, unlearn_steps

from dau.config import UnlearnConfig
from dau.errors import ConfigError

pytestmark = pytest.mark.cpu_kernels  # make test runs it again on the AVX2 path


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
