"""``dau unlearn --resume``: an interrupted unlearning run goes on from its last saved state
and ends with the weights, log and summary of a run that was never interrupted."""

import json
import os
from pathlib import Path

import pytest
import torch
from unlearn_helpers import small, unlearn_steps

from dau.checkpoint import STATE, load_run
from dau.errors import CheckpointError

ALWAYS, EPOCHS_ONLY = 0.0, 1e9  # checkpoint_seconds: after every step / at epoch ends only


def interrupt_at(monkeypatch, step):
    """Make the next unlearning run stop with Ctrl-C once it has logged ``step``."""
    from dau.methods._registry import UnlearnContext

    real = UnlearnContext.record

    def record(self, entry):
        real(self, entry)
        if entry.get("phase") == "unlearn" and entry["step"] == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(UnlearnContext, "record", record)


def weights(run):
    return load_run(run.path).load_model().state_dict()


def random_masks(model):
    gen = torch.Generator().manual_seed(0)
    return {name: (torch.rand(p.shape, generator=gen) > 0.5).to(torch.uint8)
            for name, p in model.named_parameters() if p.dim() == 4}


CASES = {
    # class-wise DAU: 6 steps an epoch, 12 in all, adversarial up to step 10
    "dau-class": (dict(epochs=2, stop_iter=10, stop_lr=0.005, schedule="cosine"), "class:1"),
    "dau-random": (dict(epochs=2, adversarial_every=2), "random:10%"),
    "ft": (dict(method="ft", epochs=2), "random:10%"),
    # the baselines (tests/methods/test_baselines.py): their own states resume too
    "retrain": (dict(method="retrain", epochs=2, lr=0.05), "random:10%"),
    "rl": (dict(method="rl", epochs=2), "random:10%"),
    "salun": (dict(method="salun", epochs=2), "class:1"),
    "l1-sparse": (dict(method="l1-sparse", epochs=2), "random:10%"),
    "neggrad+": (dict(method="neggrad+", epochs=2, forget_batch_size=8), "random:10%"),
    # 2 max steps and 6 min steps an epoch (test_baselines cuts scrub inside its passes)
    "scrub": (dict(method="scrub", epochs=2, forget_batch_size=27), "class:1"),
    "bs": (dict(method="bs", epochs=2, batch_size=3), "random:10%"),
    "amun": (dict(method="amun", epochs=2, amun_steps=5), "random:10%"),
}


@pytest.mark.parametrize("every", [ALWAYS, EPOCHS_ONLY], ids=["every-step", "epoch-ends"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_resumed_run_ends_as_an_uninterrupted_one(original, tmp_path, monkeypatch, case, every):
    check_resume(original, tmp_path, monkeypatch, case, every, "cpu")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_a_resumed_run_on_cuda_ends_as_an_uninterrupted_one(original, tmp_path, monkeypatch):
    """The CUDA generators (batches' augmentation, dropout) are saved and restored too; the
    weights agree to float tolerance (cuDNN's backward passes may sum in any order)."""
    check_resume(original, tmp_path, monkeypatch, "dau-class", ALWAYS, "cuda")


def check_resume(original, tmp_path, monkeypatch, case, every, device):
    from dau.methods.run import resume, unlearn
    from dau.pruning import save_masks

    settings, forget = CASES[case]
    config = small(**settings, device=device)
    mask = tmp_path / "masks.safetensors"
    save_masks(mask, random_masks(original.load_model()))
    kw = dict(forget=forget, model=original.path, runs_dir=tmp_path, mask=mask, progress=False)
    full = unlearn(config, out=tmp_path / "full", **kw)
    total = len(unlearn_steps(full))
    assert total > 8

    interrupt_at(monkeypatch, 9)
    with pytest.raises(KeyboardInterrupt):
        unlearn(config, out=tmp_path / "cut", checkpoint_seconds=every, **kw)
    monkeypatch.undo()
    cut = load_run(tmp_path / "cut")
    assert cut.manifest["status"] == "interrupted" and (cut.path / STATE).exists()
    saved = torch.load(cut.path / STATE, weights_only=True)
    # saved after step 8 (the step before the interruption), or at the end of epoch 1
    assert saved["step"] == (8 if every == ALWAYS else total // 2)
    assert len(unlearn_steps(cut)) == 9  # the log runs past the state: cut back on resume

    done = resume(cut.path, progress=False)
    assert done.manifest["status"] == "complete" and "error" not in done.manifest
    assert not (done.path / STATE).exists()
    assert [(r["phase"], r["from_step"]) for r in done.manifest["resumed"]] == \
        [("unlearn", saved["step"])]
    assert done.manifest["timings"]["unlearn_seconds"] > saved["elapsed"]
    for key in ("forward_images", "backward_images"):  # the redone step is counted once
        assert done.manifest["compute"]["request"][key] == full.manifest["compute"]["request"][key]
    a, b = weights(full), weights(done)
    assert {k: v for k, v in done.manifest["summary"].items() if k != "attacker"} == \
        {k: v for k, v in full.manifest["summary"].items() if k != "attacker"}
    if device == "cpu":
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert unlearn_steps(done) == unlearn_steps(full)
    else:
        assert all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-4, atol=1e-6) for k in a)
        for x, y in zip(unlearn_steps(done), unlearn_steps(full), strict=True):
            assert (x["step"], x["beta"], x["lr"]) == (y["step"], y["beta"], y["lr"])
            assert x["loss"] == pytest.approx(y["loss"], rel=1e-4)
    for name, m in random_masks(original.load_model()).items():
        assert (b[name][m == 0] == 0).all(), name


def test_a_run_stopped_before_its_first_checkpoint_starts_over(original, tmp_path, monkeypatch):
    from dau.methods.run import resume, unlearn

    config = small(epochs=2)
    kw = dict(forget="random:10%", model=original.path, runs_dir=tmp_path, progress=False)
    full = unlearn(config, out=tmp_path / "full", **kw)
    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        unlearn(config, out=tmp_path / "cut", checkpoint_seconds=EPOCHS_ONLY, **kw)
    monkeypatch.undo()
    assert not (tmp_path / "cut" / STATE).exists()
    done = resume(tmp_path / "cut", progress=False)
    assert done.manifest["resumed"][0]["from_step"] == 0
    assert unlearn_steps(done) == unlearn_steps(full)  # no record twice
    a, b = weights(full), weights(done)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_attacker_pretraining_resumes_too(original, tmp_path, monkeypatch):
    import dau.methods.dau as dau_module
    from dau.methods.run import resume, unlearn

    # an attacker config of its own, so that no run finds it cached
    config = small(attacker_pretrain_iters=12, attacker_lr=2e-3)
    kw = dict(forget="random:10%", model=original.path, runs_dir=tmp_path, progress=False)
    real, calls = dau_module._attacker_accuracy, []

    def accuracy(*args):  # called once per pretraining iteration, after its Adam step
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(dau_module, "_attacker_accuracy", accuracy)
    with pytest.raises(KeyboardInterrupt):
        unlearn(config, out=tmp_path / "cut", checkpoint_seconds=ALWAYS, **kw)
    monkeypatch.undo()
    saved = torch.load(tmp_path / "cut" / STATE, weights_only=True)
    assert (saved["phase"], saved["step"]) == ("pretrain", 6)
    done = resume(tmp_path / "cut", progress=False)
    assert done.manifest["resumed"][0] | {"at": None, "device": None} == \
        {"at": None, "phase": "pretrain", "from_step": 6, "device": None}
    cached = Path(done.manifest["summary"]["attacker"]["path"])
    cached.unlink()  # the uninterrupted run pretrains its own
    full = unlearn(config, out=tmp_path / "full", **kw)
    assert full.manifest["summary"]["attacker"]["source"] == "trained"
    assert done.manifest["summary"] == full.manifest["summary"]
    a, b = weights(full), weights(done)
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(line) for line in (done.path / "log.jsonl").read_text().splitlines()]
    assert log == [json.loads(line) for line in (full.path / "log.jsonl").read_text().splitlines()]


def test_resume_refuses_complete_running_and_training_runs(original, tmp_path, monkeypatch):
    from dau.methods.run import resume, unlearn

    interrupt_at(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        unlearn(small(method="ft", epochs=2), forget="random:10%", model=original.path,
                runs_dir=tmp_path, out=tmp_path / "cut-cpu", checkpoint_seconds=ALWAYS,
                progress=False)
    monkeypatch.undo()
    run = unlearn(small(method="ft"), forget="random:10%", model=original.path, runs_dir=tmp_path,
                  out=tmp_path / "u", progress=False)
    with pytest.raises(CheckpointError, match="already complete"):
        resume(run.path)
    with pytest.raises(CheckpointError, match=r"not an unlearning run.*dau train --resume"):
        resume(original.path)
    # state saved on another device type: its random streams cannot go on here
    # a damaged state file or a lost original: named errors, and the run is left as it was
    cut = tmp_path / "cut-cpu"
    before, state = (cut / "manifest.json").read_text(), (cut / STATE).read_bytes()
    (cut / STATE).write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match=r"state\.pt' is corrupt"):
        resume(cut)
    assert (cut / "manifest.json").read_text() == before
    (cut / STATE).write_bytes(state)
    lost = json.dumps({**json.loads(before), "parent": str(tmp_path / "gone")})
    (cut / "manifest.json").write_text(lost)
    with pytest.raises(CheckpointError, match=r"the original model run .* cannot be opened"):
        resume(cut)
    assert (cut / "manifest.json").read_text() == lost and (cut / STATE).read_bytes() == state
    (cut / "manifest.json").write_text(before)
    monkeypatch.setattr("dau.methods.run.resolve_device", lambda device: device)  # a GPU here
    with pytest.raises(CheckpointError, match="saved its state on cpu; resume it there"):
        resume(tmp_path / "cut-cpu", device="cuda")
    monkeypatch.undo()
    # a run whose process still lives (this one) is not taken over
    run.manifest["status"] = "running"
    run.write_manifest()
    with pytest.raises(CheckpointError, match=f"still running \\(process {os.getpid()}\\)"):
        resume(run.path)


def test_cli_resume_takes_only_where_and_how_it_runs(original, tmp_path, monkeypatch, cli):
    interrupt_at(monkeypatch, 3)
    base = ["unlearn", "--model", str(original.path), "--forget", "random:10%", "--method", "ft",
            "--epochs", "2", "--batch-size", "32", "--device", "cpu", "-q"]
    code, _, _ = cli(*base, "--checkpoint-every", "0.0001", "-o", str(tmp_path / "cut"))
    assert code != 0
    monkeypatch.undo()
    code, _, err = cli("unlearn", "--resume", str(tmp_path / "cut"), "--class", "2", "--lr", "1")
    assert code == 2 and "leave out --class, --lr" in err
    code, out, _ = cli("unlearn", "--resume", str(tmp_path / "cut"), "--device", "cpu", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["run"] == str(tmp_path / "cut") and result["summary"]["steps"] > 3
    assert 1 <= load_run(tmp_path / "cut").manifest["resumed"][0]["from_step"] <= 2


def test_a_given_attacker_is_checked_first_and_kept_for_the_resume(original, tmp_path,
                                                                    monkeypatch):
    from dau.methods.run import resume, unlearn

    kw = dict(forget="random:10%", model=original.path, runs_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match=r"--attacker: .*missing\.safetensors does not exist"):
        unlearn(small(), attacker=tmp_path / "missing.safetensors", out=tmp_path / "bad", **kw)
    assert not (tmp_path / "bad").exists()  # nothing written
    first = unlearn(small(), out=tmp_path / "first", **kw)
    given = first.manifest["summary"]["attacker"]["path"]
    interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        unlearn(small(epochs=2), attacker=given, out=tmp_path / "cut",
                checkpoint_seconds=EPOCHS_ONLY, **kw)
    monkeypatch.undo()
    done = resume(tmp_path / "cut", progress=False)  # from the start: no state was saved
    assert done.manifest["summary"]["attacker"] == {"source": "given", "path": given}
