"""Bring your own model and data: a torchvision ResNet-18 and a user's nn.Module unlearned on
an ImageFolder tree of real PNG files, through the Python API and through dau import +
dau unlearn + dau eval, class-wise and random, dense and with pruning masks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import dau
from dau.data.formats import write_image_folder
from dau.errors import CheckpointError, ConfigError, DauError

FAST = {"epochs": 1, "batch_size": 32, "attacker_pretrain_iters": 3, "lr": 0.01}


class TinyNet(nn.Module):
    """A user's classifier: logits only, its head named ``head``."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.hidden = nn.Linear(32, 16)
        self.head = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.hidden(self.pool(torch.relu(self.conv(x))).flatten(1)))
        return self.head(features)


def tiny_net(num_classes: int) -> TinyNet:
    torch.manual_seed(0)
    return TinyNet(num_classes)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = dau.load_dataset("synthetic:classes=4,channels=3,size=16,train=160,test=40,seed=5")
    return write_image_folder(tmp_path_factory.mktemp("byo") / "photos", data)


def changed(before: dict[str, torch.Tensor], model: nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("forget", ["class:1", "random:16"])
@pytest.mark.parametrize("method", ["dau", "ft"])
def test_a_user_module_is_unlearned_through_the_python_api(photos, forget, method) -> None:
    data = dau.data.image_folder(photos, workers=0)
    model = tiny_net(4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = dau.unlearn(model, data, forget=forget, method=method, device="cpu",
                         progress=False, **FAST)
    assert result.model is model and changed(before, model)
    assert result.split.spec == forget and len(result.split.forget) in (36, 16)
    assert result.config.method == method and result.timings["unlearn_seconds"] > 0
    assert result.records and all("loss" in r for r in result.records if r.get("phase") == "unlearn")
    report = dau.evaluate(result, progress=False)
    assert report["split"]["fingerprint"] == result.split.fingerprint
    for key in ("UA", "RA", "TA", "MIA"):
        assert 0.0 <= report[key] <= 100.0
    assert report["mia_options"]["max_samples"] == 10_000


def test_masks_keep_pruned_weights_at_zero(photos) -> None:
    data = dau.data.image_folder(photos, workers=0)
    model = tiny_net(4)
    mask = (torch.rand_like(model.conv.weight, generator=None) > 0.5).float()
    result = dau.unlearn(model, data, forget="random:16", method="dau", device="cpu",
                         masks={"conv.weight": mask}, progress=False, **FAST)
    assert torch.all(model.conv.weight[mask == 0] == 0)
    assert result.masks is not None and "model.conv.weight" in result.masks
    with pytest.raises(CheckpointError, match="masks has a mask for 'nope'"):
        dau.unlearn(tiny_net(4), data, forget="random:16", masks={"nope": mask}, device="cpu",
                    progress=False, **FAST)


def test_a_saved_result_is_a_run_that_dau_eval_judges(photos, tmp_path, cli) -> None:
    import torchvision

    data = dau.load_dataset(f"imagefolder:{photos}")
    model = torchvision.models.resnet18(num_classes=4)
    result = dau.unlearn(model, data, forget="class:2", method="ft", device="cpu",
                         arch="torchvision:resnet18", progress=False, **FAST)
    run = result.save(tmp_path / "request-42")
    assert (run.path / "model.safetensors").exists() and run.manifest["status"] == "complete"
    code, out, err = cli("eval", str(run.path), "--device", "cpu", "--json", "-q")
    assert code == 0, err
    judged = json.loads(out)["runs"][0]
    ours = dau.evaluate(result, progress=False)
    for key in ("UA", "RA", "TA"):
        assert judged[key] == pytest.approx(ours[key])
    with pytest.raises(CheckpointError, match="already exists"):
        dau.unlearn(model, data, forget="class:2", method="ft", device="cpu",
                    progress=False, **FAST).save(tmp_path / "request-42")
    user = dau.unlearn(tiny_net(4), data, forget="class:2", method="ft", device="cpu",
                       progress=False, **FAST).save(tmp_path / "user")  # no arch: not rebuildable
    with pytest.raises(CheckpointError, match="cannot rebuild by name"):
        dau.load_run(user.path).load_model()


@pytest.mark.parametrize(("arch", "forget"), [("torchvision:resnet18", "class:3"),
                                              ("import:test_api:tiny_net", "random:16")])
def test_import_unlearn_eval_on_the_command_line(photos, tmp_path, cli, monkeypatch, arch,
                                                 forget) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    if arch.startswith("torchvision"):
        import torchvision

        net: nn.Module = torchvision.models.resnet18(num_classes=4)
    else:
        net = tiny_net(4)
    torch.save(net.state_dict(), tmp_path / "my_model.pt")
    code, out, err = cli("import", str(tmp_path / "my_model.pt"), "--arch", arch, "--dataset",
                         f"imagefolder:{photos}", "--num-classes", "4", "-o",
                         str(tmp_path / "imported"), "--json")
    assert code == 0, err
    assert json.loads(out)["model"]["arch"] == arch
    masked = arch.startswith("import")  # pruning masks named for the user's own module
    mask_args = []
    if masked:
        from safetensors.torch import save_file

        keep = (torch.rand_like(net.conv.weight) > 0.5).float()
        save_file({"conv.weight": keep}, tmp_path / "masks.safetensors")
        mask_args = ["--mask", str(tmp_path / "masks.safetensors")]
    code, _, err = cli("unlearn", "--model", str(tmp_path / "imported"), "--forget", forget,
                       "--method", "dau", "--epochs", "1", "--batch-size", "32",
                       "--attacker-iters", "3", "--lr", "0.01", "--device", "cpu", "-q", "-o",
                       str(tmp_path / "unlearned"), *mask_args)
    assert code == 0, err
    code, out, err = cli("eval", str(tmp_path / "unlearned"), "--device", "cpu", "--json", "-q")
    assert code == 0, err
    result = json.loads(out)["runs"][0]
    assert result["split"]["spec"] == forget and result["UA"] is not None
    if masked:
        weights = dau.load_run(tmp_path / "unlearned").load_model().state_dict()
        assert torch.all(weights["model.conv.weight"][keep == 0] == 0)


def test_bad_input_is_named_before_anything_is_written(photos, tmp_path, cli) -> None:
    torch.save(tiny_net(7).state_dict(), tmp_path / "seven.pt")
    code, _, err = cli("import", str(tmp_path / "seven.pt"), "--arch", "import:test_api:tiny_net",
                       "--dataset", f"imagefolder:{photos}", "-o", str(tmp_path / "x"))
    assert code == 1 and "shape mismatch" in err and "head.weight" in err
    assert not (tmp_path / "x").exists()
    code, _, err = cli("import", str(tmp_path / "seven.pt"), "--arch", "torchvision:resnet18",
                       "--dataset", f"imagefolder:{photos}", "--num-classes", "10")
    assert code == 1 and "--num-classes 10" in err and "4 classes" in err
    data = dau.data.image_folder(photos, workers=0)
    with pytest.raises(ConfigError, match="data has 4 classes"):
        dau.unlearn(tiny_net(7), data, forget="class:1", device="cpu", progress=False, **FAST)
    with pytest.raises(DauError, match="selects no sample"):
        dau.unlearn(tiny_net(4), data, forget="random:0", device="cpu", progress=False, **FAST)
    with pytest.raises(ConfigError, match=r"data: expected a dau\.data\.Dataset"):
        dau.unlearn(tiny_net(4), [1, 2], forget="class:1", device="cpu", progress=False)


def test_dau_train_and_unlearn_on_a_streamed_tree_match_the_same_data_in_memory(
        photos, tmp_path, cli) -> None:
    """Training and DAU read the tree through DataLoader workers: the same batches (and the
    same global random stream: the loaders draw from their own generator) as in memory give
    bit-identical models."""
    common = ["--arch", "resnet18", "--width", "0.125", "--epochs", "2", "--batch-size", "32",
              "--device", "cpu", "-q"]
    memory = "synthetic:classes=4,channels=3,size=16,train=160,test=40,seed=5"
    assert cli("train", "--dataset", memory, *common, "-o", str(tmp_path / "m"))[0] == 0
    streamed = f"imagefolder:{photos},crop_padding=2"  # the synthetic data's augmentation
    code, _, err = cli("train", "--dataset", streamed, *common, "-o", str(tmp_path / "s"))
    assert code == 0, err
    for name in ("m", "s"):
        code, _, err = cli("unlearn", "--model", str(tmp_path / name), "--forget", "random:16",
                           "--epochs", "1", "--batch-size", "32", "--attacker-iters", "3",
                           "--noise-copies", "2", "--device", "cpu", "-q",
                           "-o", str(tmp_path / f"{name}-dau"))
        assert code == 0, err
    m, s = (dau.load_run(tmp_path / name) for name in ("m", "s"))
    assert m.manifest["split"]["fingerprint"] == s.manifest["split"]["fingerprint"]
    for a, b in ((m, s), (dau.load_run(tmp_path / "m-dau"), dau.load_run(tmp_path / "s-dau"))):
        wa, wb = a.load_model().state_dict(), b.load_model().state_dict()
        assert all(torch.equal(wa[k], wb[k]) for k in wa), a.name


def test_an_imported_torchvision_model_exports_to_torchscript(photos, tmp_path, cli) -> None:
    import torchvision

    net = torchvision.models.resnet18(num_classes=4).eval()
    torch.save(net.state_dict(), tmp_path / "w.pt")
    run = dau.import_model(tmp_path / "w.pt", f"imagefolder:{photos}", arch="torchvision:resnet18",
                           out=tmp_path / "imported")
    code, _, err = cli("export", str(run.path), "--json")
    assert code == 0, err
    scripted = torch.jit.load(str(run.path / "model.torchscript.pt"))
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(scripted(x), net(x))  # the user's logits, no normalisation added
