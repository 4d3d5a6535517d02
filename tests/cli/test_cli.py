import json
import os
from pathlib import Path

import pytest

from dau.cli import main

SYNTH = "synthetic:classes=4,channels=1,size=8,train=240,test=80,seed=0"
TRAIN = ["train", "--dataset", SYNTH, "--width", "0.125", "--epochs", "2", "--batch-size", "32",
         "--lr", "0.05", "--device", "cpu", "-q"]


def test_info_reports_versions(cli):
    code, out, _ = cli("info", "--json")
    assert code == 0
    data = json.loads(out)
    for key in ("dau", "torch", "cuda", "native", "ops"):
        assert key in data


def test_threads_option_sets_torch_s_cpu_threads(cli, monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        code, out, err = cli("--threads", "1", "info", "--json")
        assert code == 0, err
        assert json.loads(out)["cpu_threads"] == 1
        monkeypatch.setenv("DAU_THREADS", "2")
        code, out, err = cli("info", "--json")
        assert code == 0, err
        assert json.loads(out)["cpu_threads"] == 2
    finally:
        torch.set_num_threads(before)
    code, _, err = cli("--threads", "0", "info")
    assert code == 2 and "--threads" in err and "0" in err


def test_help_lists_the_commands(cli):
    code, out, _ = cli("--help")
    assert code == 0
    for command in ("train", "eval", "info"):
        assert command in out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An original model and its retrain reference, made through the CLI."""
    root = tmp_path_factory.mktemp("runs")
    made = {}
    for kind, extra in (("original", []), ("retrain", ["--forget", "random:10%", "--exclude-forget"])):
        with pytest.raises(SystemExit) as exc:
            main([*TRAIN, "--runs-dir", str(root), "-o", str(root / kind), *extra])
        assert exc.value.code == 0
        made[kind] = root / kind
    return made


def test_eval_against_the_reference(cli, runs):
    code, out, err = cli("eval", str(runs["original"]), "--reference", str(runs["retrain"]),
                             "--device", "cpu", "--json", "-q")
    assert code == 0, err
    data = json.loads(out)
    (result,) = data["runs"]
    assert result["split"]["fingerprint"] == data["reference"]["split"]["fingerprint"]
    for key in ("UA", "RA", "TA", "VA", "MIA"):
        assert result[key] is not None
    assert 0 <= result["gap"]["avg_gap"] <= 100
    n, acc = result["n_samples"], result["accuracy"]
    assert n["train"] == n["retain"] + n["forget"] == 216
    expected = (acc["retain"] * n["retain"] + acc["forget"] * n["forget"]) / n["train"]
    assert abs(acc["train"] - expected) < 1e-9
    assert data["reference"]["RTE"] > 0
    assert "original" in err and "retrain" in err  # the table


def test_eval_refuses_a_reference_on_another_split(cli, runs, tmp_path):
    code, _, err = cli(*TRAIN, "--seed", "2", "--forget", "random:10%",
                           "--exclude-forget", "-o", str(tmp_path / "other"))
    assert code == 0, err
    code, _, err = cli("eval", str(runs["retrain"]), "--reference", str(tmp_path / "other"),
                           "--device", "cpu", "-q")
    assert code == 1
    assert "split" in err and "error:" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "cifar11"], "cifar10"),
        (["--arch", "resnet19"], "resnet18"),
        (["--class", "9"], "class"),
        (["--forget", "random:100000"], "100000"),
        (["--forget", "random:10%", "--class", "1"], "--class"),
        (["--epochs", "0"], "--epochs"),
        (["--device", "tpu"], "--device"),
    ],
)
def test_bad_input_exits_1_with_a_clear_message_and_no_run(cli, tmp_path, args, message):
    code, _, err = cli(*TRAIN, "--runs-dir", str(tmp_path / "runs"), *args)
    assert code == 1, err
    assert err.startswith("error:") and message in err
    assert not (tmp_path / "runs").exists() or not os.listdir(tmp_path / "runs")


def test_missing_data_lists_where_it_looked(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("DAU_DATA", raising=False)
    code, _, err = cli("train", "--dataset", "cifar10", "--data-dir", str(tmp_path),
                           "--runs-dir", str(tmp_path / "runs"), "-q")
    assert code == 1
    assert str(tmp_path) in err


def test_usage_errors_exit_2(cli):
    code, _, _ = cli("train", "--epochs", "many")
    assert code == 2


def test_config_file_fills_defaults_and_rejects_unknown_keys(cli, tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(f'dataset = "{SYNTH}"\nwidth = 0.125\n[train]\nepochs = 1\nbatch_size = 64\n')
    code, out, err = cli("train", "-c", str(good), "--device", "cpu", "-q", "--json",
                             "--runs-dir", str(tmp_path / "runs"))
    assert code == 0, err
    manifest = json.loads((Path(json.loads(out)["run"]) / "manifest.json").read_text())
    assert manifest["config"]["epochs"] == 1 and manifest["config"]["batch_size"] == 64
    assert manifest["rewind"] == {"epoch": 1, "file": "rewind.safetensors"}  # min(8, epochs)
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepoch = 1\n")
    code, _, err = cli("train", "-c", str(bad))
    assert code == 1 and "did you mean 'epochs'" in err


def test_eval_of_a_corrupt_checkpoint_is_a_clear_error(cli, runs, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(runs["retrain"], broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    code, _, err = cli("eval", str(broken), "--device", "cpu", "-q", "--no-mia")
    assert code == 1
    assert "model.safetensors" in err and "corrupt" in err


def test_class_wise_eval_drops_the_forgotten_class_unless_asked(cli, runs):
    args = ["eval", str(runs["original"]), "--class", "2", "--device", "cpu", "-q", "--json", "--no-mia"]
    code, out, err = cli(*args)
    assert code == 0, err
    (dropped,) = json.loads(out)["runs"]
    code, out, err = cli(*args, "--keep-forgotten-classes")
    assert code == 0, err
    (kept,) = json.loads(out)["runs"]
    assert dropped["split"]["spec"] == "class:2"
    assert dropped["n_samples"]["test"] == 60 and kept["n_samples"]["test"] == 80


def test_unlearn_then_eval_through_the_cli(cli, runs, tmp_path):
    code, out, err = cli("unlearn", "--model", str(runs["original"]), "--class", "1",
                             "--attacker-iters", "5", "--epochs", "1", "--noise-copies", "2",
                             "--batch-size", "32", "--device", "cpu", "--runs-dir", str(tmp_path),
                             "--adv-weight", "0.5", "--attacker-steps", "2",
                             "--adversarial-targets", "forget", "--adversarial-every", "2",
                             "-q", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["parent"] == str(runs["original"].resolve())
    recorded = json.loads((Path(result["run"]) / "manifest.json").read_text())["config"]["unlearn"]
    assert (recorded["adv_weight"], recorded["attacker_steps"]) == (0.5, 2)
    assert (recorded["adversarial_targets"], recorded["adversarial_every"]) == ("forget", 2)
    code, out, err = cli("eval", result["run"], str(runs["original"]), "--class", "1",
                             "--device", "cpu", "-q", "--json", "--no-mia")
    assert code == 0, err
    unlearned, original = json.loads(out)["runs"]
    assert unlearned["kind"] == "dau" and original["kind"] == "original"
    assert unlearned["split"]["fingerprint"] == original["split"]["fingerprint"]


def test_every_unlearning_setting_is_an_option_with_the_configs_default():
    import dataclasses

    from dau.cli.unlearn import unlearn
    from dau.config import UnlearnConfig

    params = {p.name: p for p in unlearn.params}
    for field in dataclasses.fields(UnlearnConfig):
        assert field.name in params, f"dau unlearn has no option for {field.name}"
        param = params[field.name]
        if getattr(param, "is_flag", False):  # a flag is off unless given
            assert field.default is False, field.name
        else:
            assert param.default == field.default, field.name


def test_unlearn_without_an_original_names_the_command(cli, tmp_path):
    code, _, err = cli("unlearn", "--dataset", "digits", "--class", "3",
                           "--runs-dir", str(tmp_path), "-q")
    assert code == 1 and "dau train --dataset digits" in err
    code, _, err = cli("unlearn", "--dataset", "digits", "--runs-dir", str(tmp_path))
    assert code == 2 and "--forget" in err
