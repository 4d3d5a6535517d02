import json
import os
import platform

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import dau.training as train_module
from dau.checkpoint import load_run
from dau.errors import CheckpointError, TrainingError
from dau.training import train


def weights(run):
    return load_file(str(run.path / "model.safetensors"))


def test_training_writes_a_complete_run(tmp_path, tiny_config):
    run = train(tiny_config(), runs_dir=tmp_path, progress=False)
    assert run.manifest["status"] == "complete"
    for name in ("model.safetensors", "manifest.json", "split.json", "metrics.json", "log.jsonl"):
        assert (run.path / name).exists(), name
    assert not (run.path / "state.pt").exists()
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["split"]["fingerprint"] == run.load_plan().fingerprint
    assert len(manifest["timings"]["epoch_seconds"]) == 2
    log = [json.loads(line) for line in (run.path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    reloaded = load_run(run.path).load_model()
    assert reloaded(torch.rand(2, 1, 8, 8))[0].shape == (2, 4)


def test_training_learns_the_synthetic_task(tmp_path, tiny_config):
    run = train(tiny_config(epochs=8, schedule="cosine"), runs_dir=tmp_path, progress=False)
    metrics = run.metrics()
    assert metrics["train_acc"] > 80 and metrics["test_acc"] > 60  # chance is 25


def test_resume_reaches_the_same_weights(tmp_path, tiny_config):
    straight = train(tiny_config(epochs=3), runs_dir=tmp_path / "a", progress=False)
    partial = train(tiny_config(epochs=3), runs_dir=tmp_path / "b", progress=False, stop_after_epoch=1)
    assert partial.manifest["status"] == "interrupted"
    assert (partial.path / "state.pt").exists()
    # a run still written by a live process (this one, here) is not taken over
    assert partial.manifest["process"] == {"pid": os.getpid(), "host": platform.node()}
    partial.manifest["status"] = "running"
    partial.write_manifest()
    with pytest.raises(CheckpointError, match=f"still running \\(process {os.getpid()}\\)"):
        train(tiny_config(epochs=3), resume=partial.path, progress=False)
    partial.manifest["process"]["pid"] = 2**22 + 1  # above Linux's pid_max: a process gone
    partial.write_manifest()
    resumed = train(tiny_config(epochs=3), resume=partial.path, progress=False)
    assert resumed.manifest["status"] == "complete"
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    with pytest.raises(CheckpointError, match="already complete"):
        train(tiny_config(epochs=3), resume=partial.path, progress=False)


def test_retrain_reference_never_sees_the_forget_set(tmp_path, tiny_config):
    run = train(tiny_config(epochs=3, forget="class:0", exclude_forget=True), runs_dir=tmp_path,
                progress=False)
    plan = run.load_plan()
    assert run.manifest["split"]["trained_on"] == "retain"
    assert plan.forgotten_classes == [0]
    seen = np.concatenate([train_module.epoch_order(plan.retain, 1, e) for e in range(3)])
    assert not np.isin(seen, plan.forget).any()
    # a model that never saw class 0 never predicts it
    from dau.data import load_dataset

    test = load_dataset(tiny_config().dataset).test
    model = run.load_model().eval()
    with torch.no_grad():
        predicted = model(test.images.float() / 255)[0].argmax(1)
    assert not (predicted == 0).any()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_config, monkeypatch):
    calls = {"n": 0}
    real = train_module.F.cross_entropy

    def poisoned(logits, y):
        calls["n"] += 1
        loss = real(logits, y)
        return loss * float("nan") if calls["n"] > 10 else loss  # 7 batches per epoch

    monkeypatch.setattr(train_module.F, "cross_entropy", poisoned)
    with pytest.raises(TrainingError, match=r"epoch 2.*last good checkpoint \(epoch 1\)"):
        train(tiny_config(epochs=3), runs_dir=tmp_path, progress=False)
    (path,) = list(tmp_path.iterdir())
    run = load_run(path)
    assert run.manifest["status"] == "failed"
    assert run.manifest["epochs_done"] == 1
    assert all(torch.isfinite(t).all() for t in weights(run).values())


def test_training_with_masks_keeps_pruned_weights_at_zero(tmp_path, tiny_config):
    from dau.models import create_model

    shapes = create_model("resnet18", num_classes=4, in_channels=1, width=0.125)
    gen = torch.Generator().manual_seed(0)
    masks = {name: (torch.rand(p.shape, generator=gen) > 0.9).float()
             for name, p in shapes.named_parameters() if p.dim() == 4}
    run = train(tiny_config(), runs_dir=tmp_path, progress=False, masks=masks)
    saved = weights(run)
    for name, mask in masks.items():
        assert (saved[name][mask == 0] == 0).all(), name
        assert (saved[name][mask == 1] != 0).all(), name
    assert run.manifest["model"]["masks"] == "masks.safetensors"
    from dau.pruning import load_masks

    reloaded = load_masks(run.path)
    assert all(torch.equal(reloaded[k], masks[k]) for k in masks)


def test_an_epoch_never_ends_with_a_batch_of_one_sample(tmp_path, tiny_config):
    """BatchNorm cannot train on one sample: such a last batch is left out of its epoch (a
    different sample each epoch), in training and in unlearning."""
    from dau.config import UnlearnConfig
    from dau.methods._registry import steps_per_epoch
    from dau.methods.run import unlearn
    from dau.training import epoch_order

    run = train(tiny_config(), runs_dir=tmp_path, progress=False)
    n = len(run.load_plan().train)
    size = n - 1  # every epoch: one full batch, then one sample
    orders = [epoch_order(np.arange(n), 1, epoch, size) for epoch in (0, 1)]
    assert [len(o) for o in orders] == [n - 1, n - 1] and steps_per_epoch(n, size) == 1
    left_out = [set(range(n)) - set(o.tolist()) for o in orders]
    assert left_out[0] != left_out[1]
    again = train(tiny_config(batch_size=size), runs_dir=tmp_path, progress=False)
    assert again.manifest["status"] == "complete"
    retain = n - 2  # forget two samples
    done = unlearn(UnlearnConfig(method="ft", epochs=1, batch_size=retain - 1, device="cpu"),
                   forget="random:2", model=run.path, runs_dir=tmp_path, progress=False)
    assert len(done.load_plan().retain) == retain and done.manifest["summary"]["steps"] == 1
