"""The wheel, installed as a user would: built by maturin from this tree, installed with pip
into a fresh virtual environment, and used from there (``dau info``, a tiny train, unlearn and
eval, the Python API), away from the source tree.

The environment gets torch and dau's other requirements from this one (a ``.pth`` line to
its site-packages, so that nothing is downloaded); dau itself comes from the wheel alone.
``DAU_WHEEL=PATH`` tests a wheel built elsewhere instead of building one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SYNTH = "synthetic:classes=4,channels=1,size=8,train=240,test=80,seed=0"
API = """
import sys, dau
from dau.config import TrainConfig
from dau.training import train
runs = sys.argv[1]
original = train(TrainConfig(dataset="{synth}", width=0.125, epochs=1, batch_size=32,
                             device="cpu"), runs_dir=runs, progress=False)
result = dau.unlearn(original.load_model(), "{synth}", forget="class:1", method="ft", epochs=1,
                     batch_size=32, device="cpu", progress=False)
report = dau.evaluate(result)
print(dau.__file__, report["UA"] is not None)
""".replace("{synth}", SYNTH)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("DAU_WHEEL")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("dist")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "VIRTUAL_ENV": str(bin_dir.parent),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([str(bin_dir / "maturin"), "build", "--release", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = out.glob("dau-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed; returns its bin directory."""
    root = tmp_path_factory.mktemp("venv")
    venv.create(root, with_pip=True)
    bin_dir = root / "bin"
    purelib = subprocess.run([str(bin_dir / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # torch and the other requirements, from this environment (its .pth files, such as the
    # editable install of this tree, are not read from an added path)
    Path(purelib, "host-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return bin_dir


def run(bin_dir: Path, *args: str, cwd: Path) -> str:
    done = subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, f"{args}: {done.stderr[-3000:]}"
    return done.stdout


def test_the_installed_wheel_runs_the_commands_and_the_api(installed: Path, tmp_path: Path) -> None:
    where = run(installed, "python", "-c", "import dau; print(dau.__file__)", cwd=tmp_path)
    assert where.strip().startswith(str(installed.parent)), where  # the wheel's, not the tree's
    info = json.loads(run(installed, "dau", "info", "--json", cwd=tmp_path))
    assert info["ops"]["available"], info["ops"]  # the compiled ops, from the wheel
    assert info["ops"]["library_path"].startswith(str(installed.parent)), info["ops"]
    # the wheel declares what it needs, and this environment provides it
    check = subprocess.run([str(installed / "python"), "-m", "pip", "check"],
                           capture_output=True, text=True).stdout
    assert not [line for line in check.splitlines() if line.lower().startswith("dau ")], check
    runs = tmp_path / "runs"
    common = ["--dataset", SYNTH, "--width", "0.125", "--epochs", "1", "--batch-size", "32",
              "--device", "cpu", "-q", "--runs-dir", str(runs)]
    run(installed, "dau", "train", *common, "-o", str(runs / "orig"), cwd=tmp_path)
    run(installed, "dau", "train", *common, "-o", str(runs / "retrain"), "--forget", "class:1",
        "--exclude-forget", cwd=tmp_path)
    run(installed, "dau", "unlearn", "--model", str(runs / "orig"), "--class", "1",
        "--epochs", "1", "--batch-size", "32", "--attacker-iters", "3", "--noise-copies", "2",
        "--device", "cpu", "-q", "-o", str(runs / "dau"), cwd=tmp_path)
    table = json.loads(run(installed, "dau", "eval", str(runs / "dau"), "--reference",
                           str(runs / "retrain"), "--device", "cpu", "-q", "--json",
                           cwd=tmp_path))
    assert table["runs"][0]["gap"]["avg_gap"] is not None
    out = run(installed, "python", "-c", API, str(tmp_path / "api"), cwd=tmp_path)
    assert out.split()[0].startswith(str(installed.parent)) and out.split()[1] == "True", out
