"""The ``dau`` command runs its work in a supervised child: a run whose process dies by a
signal (a native crash, the OOM killer, a scheduler's SIGTERM) is marked with the reason,
never left "running", and ``--resume`` goes on from its last saved state to the result of a
run that never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dau.supervisor import CRASH_LOG

SYNTH = "synthetic:classes=4,channels=1,size=8,train=240,test=80,seed=0"


def unsupervised_env() -> dict[str, str]:
    """This environment without the supervisor's variables: the dau it starts supervises."""
    return {k: v for k, v in os.environ.items() if k not in ("DAU_SUPERVISED", "DAU_NO_SUPERVISOR")}


def dau(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dau", *args], capture_output=True, text=True,
                          env=unsupervised_env(), timeout=600, **kw)


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "original"
    done = dau("train", "--dataset", SYNTH, "--width", "0.125", "--epochs", "2", "--batch-size",
               "32", "-o", str(out))
    assert done.returncode == 0, done.stderr
    return out


def unlearn_args(original: Path, out: Path) -> list[str]:
    return ["unlearn", "--model", str(original), "--forget", "random:10%", "--epochs", "12",
            "--batch-size", "32", "--attacker-iters", "5", "--noise-copies", "2",
            "--checkpoint-every", "0.0001", "-o", str(out)]


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def unlearn_records(run: Path) -> list[str]:
    return [line for line in (run / "log.jsonl").read_text().splitlines() if '"unlearn"' in line]


def start_and_kill(args: list[str], run: Path, sig: signal.Signals, *, child: bool
                   ) -> subprocess.CompletedProcess:
    """Start ``dau ARGS``; once its run has saved state after 10 unlearning steps, send
    ``sig`` to the child doing the work (``child``) or to the ``dau`` command itself."""
    proc = subprocess.Popen([sys.executable, "-m", "dau", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=unsupervised_env())
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        log = run / "log.jsonl"
        steps = log.read_text().count('"phase": "unlearn"') if log.exists() else 0
        if steps >= 10 and (run / "state.pt").exists():
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be stopped: {proc.communicate()}"
    target = manifest(run)["process"]["pid"]
    assert target != proc.pid  # the work runs in a child process
    os.kill(target if child else proc.pid, sig)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
def test_a_crashed_run_is_marked_failed_and_resumes_to_the_uninterrupted_result(original, tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    done = dau(*unlearn_args(original, full))
    assert done.returncode == 0, done.stderr
    assert not (full / CRASH_LOG).exists()  # an empty crash log is not left behind

    crashed = start_and_kill(unlearn_args(original, cut), cut, signal.SIGSEGV, child=True)
    assert crashed.returncode == 128 + signal.SIGSEGV
    state = manifest(cut)
    assert state["status"] == "failed"
    assert "killed by SIGSEGV (Segmentation fault)" in state["error"]
    assert "Fatal Python error: Segmentation fault" in (cut / CRASH_LOG).read_text()
    assert "Fatal Python error: Segmentation fault" in crashed.stderr
    assert f"dau unlearn --resume {cut}" in crashed.stderr

    resumed = dau("unlearn", "--resume", str(cut))
    assert resumed.returncode == 0, resumed.stderr
    assert manifest(cut)["status"] == "complete"
    assert "Fatal Python error: Segmentation fault" in (cut / CRASH_LOG).read_text()  # kept
    assert "Fatal Python error" not in resumed.stderr
    assert (cut / "model.safetensors").read_bytes() == (full / "model.safetensors").read_bytes()
    assert unlearn_records(cut) == unlearn_records(full)  # the first run also pretrained the
    # attacker that the second one found cached


@pytest.mark.slow
def test_sigterm_to_the_command_reaches_the_work_and_marks_the_run_interrupted(original, tmp_path):
    run = tmp_path / "run"
    stopped = start_and_kill(unlearn_args(original, run), run, signal.SIGTERM, child=False)
    assert stopped.returncode == 128 + signal.SIGTERM
    state = manifest(run)
    assert state["status"] == "interrupted"
    assert "killed by SIGTERM" in state["error"]
    assert not (run / CRASH_LOG).exists()
    assert "Fatal Python error" not in stopped.stderr


def test_commands_without_a_run_pass_their_exit_code_through(tmp_path):
    assert dau("info").returncode == 0
    bad = dau("eval", str(tmp_path / "missing"))
    assert bad.returncode == 2 and "does not exist" in bad.stderr
