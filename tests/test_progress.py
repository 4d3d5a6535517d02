"""Progress output (``dau.progress``): bars on a terminal, plain periodic lines elsewhere."""

import io
import os
import subprocess
import sys

import pytest

import dau.progress
from dau.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_bar(monkeypatch, stream, *, enabled=True, seconds=None):
    monkeypatch.setattr(sys, "stderr", stream)
    if seconds is not None:
        monkeypatch.setattr(dau.progress, "LINE_SECONDS", seconds)
    for _ in progress_bar(range(5), enabled=enabled, desc="work", unit="step", leave=False):
        pass
    return stream.getvalue()


def test_a_terminal_gets_a_bar(monkeypatch):
    out = run_bar(monkeypatch, Terminal())
    assert "\r" in out and "work" in out


def test_elsewhere_progress_is_plain_lines_with_rate_and_eta(monkeypatch):
    out = run_bar(monkeypatch, io.StringIO(), seconds=0.0)
    lines = out.splitlines()
    assert "\r" not in out and lines
    assert all(line.startswith("work:") for line in lines)
    assert "step/s" in lines[-1] and "<" in lines[-1]  # rate, and elapsed<remaining


def test_elsewhere_short_work_prints_nothing(monkeypatch):
    assert run_bar(monkeypatch, io.StringIO()) == ""


@pytest.mark.parametrize("stream", [Terminal, io.StringIO])
def test_disabled_progress_prints_nothing(monkeypatch, stream):
    assert run_bar(monkeypatch, stream(), enabled=False, seconds=0.0) == ""


def test_a_command_logging_to_a_file_writes_no_bar_frames(tmp_path, synth):
    with open(tmp_path / "err.log", "w") as err:
        done = subprocess.run(
            [sys.executable, "-m", "dau", "train", "--dataset", synth, "--width", "0.125",
             "--epochs", "2", "--batch-size", "32", "-o", str(tmp_path / "run")],
            stdout=subprocess.PIPE, stderr=err, text=True, timeout=600,
            env={k: v for k, v in os.environ.items() if k != "DAU_SUPERVISED"})
    log = (tmp_path / "err.log").read_bytes()  # bytes: text mode would read "\r" as "\n"
    assert done.returncode == 0, log
    assert b"\r" not in log and b"batch/s" not in log  # short work: no progress lines at all
    assert b"epoch 2/2: loss" in log  # the log lines stay
