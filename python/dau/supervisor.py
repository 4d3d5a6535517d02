"""The ``dau`` command in a child process, so that a native crash never leaves a run "running".

A segmentation fault or an abort inside a native library kills a process before Python can
mark the run directory it writes. The ``dau`` command therefore runs in a child process; when
the child dies by a signal (or exits with the run still marked running), the parent marks that
run ``failed`` (``interrupted`` for SIGINT, SIGTERM and SIGHUP) with the reason, prints the
child's Python traceback (``faulthandler``, kept in the run's ``crash.log``) and exits with
128 + the signal number. The run keeps its last saved state, so ``--resume`` goes on from it.

``DAU_SUPERVISED`` (set by the parent) names the file in which the child announces its runs;
``DAU_NO_SUPERVISOR=1`` runs the command in-process. Imports nothing of dau or torch.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from dau._atomic import atomic_write_json

__all__ = ["CRASH_LOG", "announce_run", "should_supervise", "supervise"]

ANNOUNCE_ENV = "DAU_SUPERVISED"
DISABLE_ENV = "DAU_NO_SUPERVISOR"
CRASH_LOG = "crash.log"
STOPPING = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}  # a person or a scheduler stopped it
FORWARDED = (signal.SIGTERM, signal.SIGHUP)  # Ctrl-C reaches the child from the terminal itself

_crash_log: TextIO | None = None


def should_supervise() -> bool:
    """Whether this ``dau`` command runs its work in a supervised child process."""
    return not os.environ.get(ANNOUNCE_ENV) and os.environ.get(DISABLE_ENV, "") in ("", "0")


def announce_run(path: Path) -> None:
    """In a supervised child: tell the parent which run this process writes, and append
    Python's traceback of a fatal signal to the run's ``crash.log`` (an earlier crash's stays).
    Does nothing unsupervised."""
    global _crash_log
    record = os.environ.get(ANNOUNCE_ENV)
    if not record:
        return
    if _crash_log is not None:
        _crash_log.close()
    _crash_log = open(Path(path) / CRASH_LOG, "a")  # noqa: SIM115  (open while the process lives)
    with open(record, "a") as fh:
        fh.write(f"{_crash_log.tell()}\t{Path(path).resolve()}\n")
    faulthandler.enable(_crash_log, all_threads=True)


def describe(returncode: int) -> str:
    """'SIGSEGV (Segmentation fault)' for a child that died by signal 11."""
    sig = signal.Signals(-returncode)
    return f"{sig.name} ({signal.strsignal(sig) or 'signal'})"


def supervise(argv: list[str]) -> int:
    """Run ``python -m dau ARGV`` as a child; mark the runs it leaves running; its exit code."""
    fd, record = tempfile.mkstemp(prefix="dau-runs-", suffix=".txt")
    os.close(fd)
    try:
        child = subprocess.Popen([sys.executable, "-m", "dau", *argv],
                                 env={**os.environ, ANNOUNCE_ENV: record})
        previous = {sig: signal.signal(sig, lambda s, _f: child.send_signal(s)) for sig in FORWARDED}
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            returncode = child.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        runs = [line.split("\t", 1) for line in Path(record).read_text().splitlines() if line]
    finally:
        os.unlink(record)
    for offset, run in runs:
        _settle(Path(run), int(offset), child.pid, returncode)
    return 128 - returncode if returncode < 0 else returncode


def _settle(run: Path, offset: int, pid: int, returncode: int) -> None:
    """Mark ``run`` as the dead child left it, if the child left it running; an empty
    crash.log is removed. ``offset``: where the child's part of crash.log begins."""
    crash_log = run / CRASH_LOG
    traceback = ""
    with contextlib.suppress(FileNotFoundError):
        with open(crash_log, "rb") as fh:
            empty = not fh.read(1)
            fh.seek(offset)
            traceback = fh.read().decode(errors="replace")
        if empty:
            crash_log.unlink()
    manifest_path = run / "manifest.json"
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return
    if manifest.get("status") != "running" or manifest.get("process", {}).get("pid") != pid:
        return
    crashed = bool(traceback.strip())
    stopped = -returncode in STOPPING
    if returncode < 0:
        status = "interrupted" if stopped else "failed"
        reason = f"the process {pid} was killed by {describe(returncode)}"
        if crashed:
            reason += f"; Python's traceback is in {CRASH_LOG}"
    else:
        status, reason = "failed", f"the process {pid} exited with code {returncode}"
    manifest.update(status=status, error=reason)
    atomic_write_json(manifest_path, manifest)
    if crashed and returncode < 0 and not stopped:
        sys.stderr.write(traceback if traceback.endswith("\n") else traceback + "\n")
    resume = ""
    if (run / "state.pt").exists():
        command = "train" if manifest.get("kind") in ("original", "retrain") else "unlearn"
        resume = f"; `dau {command} --resume {run}` goes on from its last saved state"
    sys.stderr.write(f"error: {reason}; {run} is marked {status}{resume}\n")
