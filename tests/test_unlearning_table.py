"""benchmarks/unlearning_table.py: the job plan, resuming, CPU threads, and one whole
reproduction (dense and sparse, random and class-wise) on a tiny synthetic dataset."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "unlearning_table.py"


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("unlearning_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["unlearning_table"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules["unlearning_table"]


def test_plan_names_needs_and_options(table):
    args = table.parse_args(["--variant", "dau-random-lr=--forget random:10% --lr 0.02"])
    jobs = {job.name: job for job in table.plan_jobs(args)}
    bases = ["original", "retrain-random", "retrain-class"]
    unlearned = [f"{m}-{mode}" for m in ("dau", "ft") for mode in ("random", "class")]
    assert set(jobs) == {*bases, *(f"sparse-{b}" for b in bases), *unlearned,
                         *(f"sparse-{u}" for u in unlearned), "dau-random-lr"}
    assert jobs["sparse-retrain-class"].needs == ["retrain-class"]
    assert jobs["sparse-dau-class"].needs == ["sparse-original"]
    assert jobs["sparse-dau-class"].args[jobs["sparse-dau-class"].args.index("--mask") + 1] \
        == "sparse-original"
    assert "--attacker-iters" in jobs["dau-random"].args
    assert "--attacker-iters" not in jobs["ft-random"].args
    # the variant waits for the run whose cached attacker it reuses
    assert jobs["dau-random-lr"].needs == ["original", "dau-random"]
    assert jobs["retrain-class"].args[-3:] == ["--class", "3", "--exclude-forget"]

    dense = table.plan_jobs(table.parse_args(["--no-sparse", "--methods", "ft"]))
    assert [job.name for job in dense] == [*bases, "ft-random", "ft-class"]


def test_tables_layout(table):
    args = table.parse_args(["--variant", "v=--class 3 --lr 0.01"])
    layout = table.tables(args, table.plan_jobs(args))
    assert set(layout) == {"dense-random", "dense-class", "sparse-random", "sparse-class"}
    assert layout["dense-class"]["rows"] == ["original", "dau-class", "ft-class", "v"]
    assert layout["sparse-random"]["rows"] == ["sparse-original", "sparse-dau-random",
                                               "sparse-ft-random"]
    assert layout["sparse-random"]["reference"] == "sparse-retrain-random"


@pytest.mark.parametrize("value", ["0", "-2"])
def test_job_counts_must_be_positive(table, value, capsys):
    with pytest.raises(SystemExit):
        table.parse_args(["--jobs", value])
    assert f"expected at least 1, got {value}" in capsys.readouterr().err


def _run_dir(path: Path, status: str, state: bool) -> None:
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"status": status}))
    if state:
        (path / "state.pt").write_bytes(b"")


def test_interrupted_runs_resume_and_runs_without_state_restart(table, tmp_path):
    args = table.parse_args(["--root", str(tmp_path), "--device", "cpu"])
    jobs = {job.name: job for job in table.plan_jobs(args)}
    names = set(jobs)
    _run_dir(tmp_path / "original", "interrupted", state=True)
    _run_dir(tmp_path / "sparse-original", "running", state=True)
    _run_dir(tmp_path / "retrain-class", "running", state=False)  # stopped in its first epoch
    _run_dir(tmp_path / "dau-random", "interrupted", state=True)
    _run_dir(tmp_path / "ft-random", "running", state=False)  # stopped before its first save

    for name, command in (("original", "train"), ("sparse-original", "train"),
                          ("dau-random", "unlearn")):
        argv = table.job_argv(jobs[name], args, names)
        assert argv[-6:] == [command, "--resume", str(tmp_path / name), "--device", "cpu",
                             "--quiet"]
        assert (tmp_path / name / "manifest.json").exists()
    for name in ("retrain-class", "ft-random"):
        argv = table.job_argv(jobs[name], args, names)
        assert argv[-3:] == ["--out", str(tmp_path / name), "--quiet"]
        assert not (tmp_path / name).exists()
        kept = list(tmp_path.glob(f"{name}.interrupted-*"))
        assert len(kept) == 1 and (kept[0] / "manifest.json").exists()
    # job names given to --model/--mask become the run directories under the root
    argv = table.job_argv(jobs["sparse-dau-class"], args, names)
    assert argv[argv.index("--mask") + 1] == str(tmp_path / "sparse-original")


def test_cpu_threads(table, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(table.os, "cpu_count", lambda: 8)
    cpu = table.parse_args(["--device", "cpu"])
    assert table.cpu_threads(cpu, 3) == 2
    assert table.cpu_threads(cpu, 16) == 1
    assert table.cpu_threads(table.parse_args(["--device", "cuda"]), 2) is None
    assert table.cpu_threads(table.parse_args(["--device", "cpu", "--threads", "3"]), 2) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert table.cpu_threads(cpu, 2) is None


def _reproduce(args: list[str]) -> str:
    """Run the script as a user does (its evaluation workers import it as __main__)."""
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_whole_table_on_a_tiny_dataset_resuming_an_interrupted_original(tmp_path, synth):
    """The full protocol (dense and 95 % sparse, random and class-wise, DAU) end to end,
    with the original model interrupted after its first epoch beforehand."""
    from dau.config import TrainConfig
    from dau.training import train

    root = tmp_path / "table"
    args = ["--root", str(root), "--dataset", synth, "--width", "0.125", "--epochs", "2",
            "--batch-size", "32", "--train-args", "--schedule cosine --no-augment --rewind-epoch 1",
            "--methods", "dau", "--dau-args", "--attacker-iters 5 --batch-size 32",
            "--device", "cpu", "--jobs", "2", "--eval-jobs", "2", "--max-mia-samples", "200"]
    config = TrainConfig(dataset=synth, arch="resnet18", width=0.125, epochs=2, batch_size=32,
                         lr=0.05, schedule="cosine", augment=False, rewind_epoch=1,
                         device="cpu", seed=1)
    train(config, out=root / "original", progress=False, stop_after_epoch=1)
    assert json.loads((root / "original" / "manifest.json").read_text())["status"] == "interrupted"

    out = _reproduce(args)
    assert "--resume" in (root / "logs" / "original.log").read_text()
    assert not list(root.glob("*.interrupted-*"))
    log = [json.loads(line) for line in (root / "original" / "log.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in log] == [1, 2]
    for key, reference in [("dense-random", "retrain-random"), ("dense-class", "retrain-class"),
                           ("sparse-random", "sparse-retrain-random"),
                           ("sparse-class", "sparse-retrain-class")]:
        saved = json.loads((root / "eval" / f"{key}.json").read_text())
        prefix = "sparse-" if key.startswith("sparse") else ""
        mode = key.split("-")[1]
        assert saved["reference"] == reference
        assert set(saved["rows"]) == {f"{prefix}original", f"{prefix}dau-{mode}", reference}
        assert f"## {'sparse' if prefix else 'dense'} {mode}" in out
        ref_row = saved["rows"][reference]
        for row in saved["rows"].values():
            assert row["split"]["spec"] == ("class:3" if mode == "class" else "random:10%")
            gaps = [abs(row[m] - ref_row[m]) for m in ("UA", "RA", "TA", "MIA")]
            assert row.get("gap", {"avg_gap": 0.0})["avg_gap"] == pytest.approx(sum(gaps) / 4)
    # the sparse rows are 95 % sparse models: the unlearned one kept its pruned weights at 0
    weights = load_file(root / "sparse-dau-class" / "model.safetensors")
    conv = [w for w in weights.values() if w.dim() == 4]
    zeros = sum(int((w == 0).sum()) for w in conv) / sum(w.numel() for w in conv)
    assert zeros == pytest.approx(0.95, abs=1e-3)

    # a second call finds every run and evaluation done and changes nothing
    created = json.loads((root / "sparse-dau-class" / "manifest.json").read_text())["created"]
    out = _reproduce(args)
    assert "sparse-dau-class: already complete" in out
    assert "evaluating" not in out
    assert json.loads((root / "sparse-dau-class" / "manifest.json").read_text())["created"] \
        == created
