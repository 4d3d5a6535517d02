import pytest
import torch
from safetensors.torch import load_file

from dau.checkpoint import load_run
from dau.config import TrainConfig, UnlearnConfig
from dau.errors import CheckpointError, ConfigError
from dau.models import create_model
from dau.pruning import load_masks, omp_masks, save_masks, sparsity

SYNTH = "synthetic:classes=4,channels=1,size=8,train=240,test=80,seed=0"


def test_omp_prunes_the_smallest_conv_weights_globally():
    model = create_model("resnet18", num_classes=10)
    masks = omp_masks(model, 0.95)
    assert sum(int(m.sum()) for m in masks.values()) == 557_962  # spec §11
    assert set(masks) == {n for n, p in model.named_parameters() if p.dim() == 4}
    kept = torch.cat([p.detach().abs().flatten()[masks[n].flatten() == 1]
                      for n, p in model.named_parameters() if n in masks])
    pruned = torch.cat([p.detach().abs().flatten()[masks[n].flatten() == 0]
                        for n, p in model.named_parameters() if n in masks])
    assert pruned.max() <= kept.min()
    assert abs(sparsity(masks) - 0.95) < 1e-6


def test_bad_ratio_is_a_config_error():
    with pytest.raises(ConfigError, match="--ratio"):
        omp_masks(create_model("resnet18", num_classes=10, width=0.125), 1.5)


def test_masks_round_trip_and_reference_format(tmp_path):
    model = create_model("resnet18", num_classes=4, in_channels=1, width=0.125)
    masks = omp_masks(model, 0.5)
    save_masks(tmp_path / "masks.safetensors", masks)
    again = load_masks(tmp_path / "masks.safetensors", model)
    assert all(torch.equal(again[k], masks[k]) for k in masks)
    # the reference code's format: weight_orig / weight_mask entries in a torch.save'd dict
    state = {f"{k}_orig": torch.randn_like(v) for k, v in masks.items()}
    state.update({f"{k}_mask": v for k, v in masks.items()})
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "1model_SA_best.pth.tar")
    ref = load_masks(tmp_path / "1model_SA_best.pth.tar", model)
    assert all(torch.equal(ref[k], masks[k]) for k in masks)


def test_masks_that_do_not_fit_the_model_are_refused(tmp_path):
    model = create_model("resnet18", num_classes=4, in_channels=1, width=0.125)
    save_masks(tmp_path / "m.safetensors", {"conv1.weight": torch.ones(3, 3)})
    with pytest.raises(CheckpointError, match="does not match the model"):
        load_masks(tmp_path / "m.safetensors", model)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_masks(tmp_path / "junk.pt")


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    from dau.training import train

    root = tmp_path_factory.mktemp("runs")
    config = TrainConfig(dataset=SYNTH, width=0.125, epochs=3, batch_size=32, lr=0.05, device="cpu",
                         rewind_epoch=1)
    return train(config, runs_dir=root, out=root / "original", progress=False)


def test_prune_rewinds_and_retrains_a_sparse_model(original, tmp_path):
    from dau.pruning.run import prune

    assert original.manifest["rewind"] == {"epoch": 1, "file": "rewind.safetensors"}
    run = prune(original.path, 0.9, epochs=2, device="cpu", runs_dir=tmp_path, progress=False)
    assert run.manifest["status"] == "complete"
    assert run.manifest["pruning"]["lr_rewind"] == 1 and run.manifest["parent"]
    masks = load_masks(run.path)
    weights = load_file(str(run.path / "model.safetensors"))
    assert abs(sparsity(masks) - 0.9) < 1e-3
    for name, mask in masks.items():
        assert (weights[name][mask == 0] == 0).all()


def test_unlearning_a_pruned_model_keeps_it_sparse(original, tmp_path, monkeypatch):
    from dau.methods.defaults import DEFAULTS
    from dau.methods.run import find_original, unlearn
    from dau.pruning.run import prune

    # a pruned model takes its mode's "-sparse" defaults where there are some
    monkeypatch.setitem(DEFAULTS, ("ft", "cifar10", "random-sparse"), dict(lr=0.02, epochs=1))

    # beside the original, and newer than it
    pruned = prune(original.path, 0.9, epochs=1, device="cpu", runs_dir=original.path.parent,
                   progress=False)
    config = UnlearnConfig(epochs=1, batch_size=32, attacker_pretrain_iters=3, noise_copies=2,
                           device="cpu")
    for method in ("dau", "ft"):
        run = unlearn(config.replace(method=method), forget="random:10%", mask=pruned.path,
                      runs_dir=tmp_path, progress=False)
        masks = load_masks(run.path)
        weights = load_file(str(run.path / "model.safetensors"))
        for name, mask in masks.items():
            assert (weights[name][mask == 0] == 0).all(), (method, name)
        assert load_run(run.path).manifest["pruning"]["sparsity"] == pytest.approx(0.9, abs=1e-3)
        assert run.manifest["config"]["unlearn"]["lr"] == (0.02 if method == "ft" else 0.01)
    # a masks file applied to the dense original
    run = unlearn(config.replace(method="ft"), forget="random:10%", model=original.path,
                  mask=pruned.path / "masks.safetensors", runs_dir=tmp_path, progress=False)
    weights = load_file(str(run.path / "model.safetensors"))
    for name, mask in load_masks(pruned.path).items():
        assert (weights[name][mask == 0] == 0).all()
    # the dense original is still the one found by dataset, not the newer pruned one
    assert find_original(original.path.parent, SYNTH).path == original.path
