"""Unlearning augments its batches only when the original model was trained with augmentation."""

import pytest

from dau.config import TrainConfig, UnlearnConfig

SYNTH = "synthetic:classes=4,channels=1,size=8,train=240,test=80,seed=0"


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    from dau.training import train

    root = tmp_path_factory.mktemp("runs")
    made = {}
    for augment in (True, False):
        config = TrainConfig(dataset=SYNTH, width=0.125, epochs=1, batch_size=32, lr=0.05,
                             device="cpu", augment=augment)
        made[augment] = train(config, runs_dir=root, out=root / f"aug-{augment}", progress=False)
    return made


@pytest.mark.parametrize("method", ["dau", "ft"])
@pytest.mark.parametrize("augment", [True, False])
def test_unlearning_follows_the_originals_augmentation(originals, tmp_path, monkeypatch,
                                                       method, augment):
    import dau.data.loaders as loaders
    from dau.methods.run import unlearn

    seen = []
    real = loaders.iterate_batches

    def spy(*args, **kwargs):
        seen.append(kwargs["augment"])
        return real(*args, **kwargs)

    monkeypatch.setattr(loaders, "iterate_batches", spy)
    config = UnlearnConfig(method=method, epochs=1, batch_size=32, attacker_pretrain_iters=2,
                           noise_copies=2, device="cpu")
    unlearn(config, forget="class:1", model=originals[augment].path, runs_dir=tmp_path,
            progress=False)
    assert seen, "no batch was drawn"
    # class-wise DAU augments retain, forget and validation batches of an augmented model
    assert any(seen) == augment
    if not augment:
        assert not any(seen)
