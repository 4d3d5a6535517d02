import json
import os

import pytest
import torch

from dau import checkpoint as ckpt
from dau.errors import CheckpointError
from dau.models import create_model


def small(classes=10, arch="resnet18"):
    return create_model(arch, num_classes=classes, in_channels=1, width=0.125)


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), ckpt.atomic_write(target) as fh:
        fh.write(b"partial")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_weights_round_trip(tmp_path):
    model = small()
    ckpt.save_model(tmp_path / "m.safetensors", model)
    other = small()
    ckpt.load_weights(other, tmp_path / "m.safetensors")
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_corrupt_weights_are_a_checkpoint_error(tmp_path):
    path = tmp_path / "m.safetensors"
    ckpt.save_model(path, small())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        ckpt.load_weights(small(), path)


@pytest.mark.parametrize("other", [dict(classes=5), dict(arch="vgg16_bn")])
def test_mismatched_weights_are_refused(tmp_path, other):
    path = tmp_path / "m.safetensors"
    ckpt.save_model(path, small())
    with pytest.raises(CheckpointError, match="does not match"):
        ckpt.load_weights(small(**other), path)


def test_run_dir_is_never_reused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="already exists"):
        ckpt.create_run_dir(tmp_path, "x", out)
    assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_unwritable_runs_dir_is_a_clear_error(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(CheckpointError, match="cannot write"):
            ckpt.create_run_dir(tmp_path / "sub", "x")
    finally:
        tmp_path.chmod(0o700)


def test_unwritable_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CheckpointError, match="cannot write"):
        ckpt.create_run_dir(blocker / "runs", "x")


def test_load_run_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not a directory"):
        ckpt.load_run(tmp_path / "nope")
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(CheckpointError, match="not readable JSON"):
        ckpt.load_run(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": 99}))
    with pytest.raises(CheckpointError, match="schema"):
        ckpt.load_run(tmp_path)
