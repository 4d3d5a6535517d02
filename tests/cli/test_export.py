import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dau.cli import main

SYNTH = "synthetic:classes=4,channels=1,size=8,train=240,test=80,seed=0"

# Runs in a fresh interpreter that never imports dau: loads the file with torch alone.
LOADER = """
import sys, torch
model = torch.jit.load(sys.argv[1])
x = torch.load(sys.argv[2])
torch.save(model(x), sys.argv[3])
assert not any(name == "dau" or name.startswith("dau.") for name in sys.modules), "dau imported"
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", SYNTH, "--width", "0.125", "--epochs", "1", "--batch-size", "32",
              "--device", "cpu", "-q", "-o", str(root / "original")])
    assert exc.value.code == 0
    return root / "original"


def logits_without_dau(path: Path, x: torch.Tensor, tmp_path: Path) -> torch.Tensor:
    torch.save(x, tmp_path / "x.pt")
    env = {"PATH": "/usr/bin:/bin"}  # no PYTHONPATH: dau is not importable from the repo
    subprocess.run([sys.executable, "-c", LOADER, str(path), str(tmp_path / "x.pt"),
                    str(tmp_path / "y.pt")], check=True, cwd=tmp_path, env=env)
    return torch.load(tmp_path / "y.pt")


def test_export_gives_the_runs_logits_in_a_process_without_dau(cli, trained, tmp_path):
    from dau.checkpoint import load_run

    out = tmp_path / "model.pt"
    code, stdout, err = cli("export", str(trained), "--format", "torchscript",
                                "-o", str(out), "--json")
    assert code == 0, err
    assert json.loads(stdout)["file"] == str(out)
    x = torch.rand(5, 1, 8, 8)
    expected, _ = load_run(trained).load_model().eval()(x)
    got = logits_without_dau(out, x, tmp_path)
    assert got.shape == (5, 4) and torch.allclose(got, expected, atol=1e-5)
    meta = {"dau.json": ""}
    torch.jit.load(str(out), _extra_files=meta)
    assert json.loads(meta["dau.json"])["returns"] == "logits"


def test_export_refuses_to_overwrite_without_force(cli, trained, tmp_path):
    out = tmp_path / "exists.pt"
    out.write_bytes(b"keep me")
    code, _, err = cli("export", str(trained), "-o", str(out))
    assert code == 1 and "--force" in err and out.read_bytes() == b"keep me"
    code, _, err = cli("export", str(trained), "-o", str(out), "--force", "-q")
    assert code == 0, err
    assert torch.jit.load(str(out))(torch.rand(2, 1, 8, 8)).shape == (2, 4)
    assert [p.name for p in tmp_path.iterdir()] == ["exists.pt"]  # no temporary file left
    code, _, err = cli("export", str(trained), "-o", str(tmp_path / "no" / "x.pt"))
    assert code == 1 and "does not exist" in err


def test_a_pruned_run_exports_with_its_masks_folded(cli, trained, tmp_path):
    import shutil

    from dau.checkpoint import load_run
    from dau.pruning import MASKS, save_masks

    pruned = tmp_path / "pruned"
    shutil.copytree(trained, pruned)
    run = load_run(pruned)
    model = run.load_model().eval()
    masks = {name: (torch.rand_like(p) > 0.5).float()
             for name, p in model.named_parameters() if p.dim() == 4}
    save_masks(pruned / MASKS, masks)
    run.manifest["model"] = {**run.manifest["model"], "masks": MASKS}
    run.write_manifest()
    code, _, err = cli("export", str(pruned), "-q")
    assert code == 0, err
    exported = torch.jit.load(str(pruned / "model.torchscript.pt"))
    x = torch.rand(4, 1, 8, 8)
    dense, _ = model(x)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in masks:
                p.mul_(masks[name])
    folded, _ = model(x)
    assert torch.allclose(exported(x), folded, atol=1e-5)
    assert not torch.allclose(exported(x), dense, atol=1e-3)
    weights = dict(exported.named_parameters())
    name = next(iter(masks))
    assert (weights[f"model.{name}"][masks[name] == 0] == 0).all()
