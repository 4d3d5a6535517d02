"""Run directories: ``model.safetensors`` + ``manifest.json`` (+ metrics, logs, resume state).

Every write is atomic (a temporary file in the same directory, then ``os.replace``),
so an interrupted process never leaves a half-written file. Weights are read with
safetensors only; the resume state is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dau._atomic import atomic_write, atomic_write_json
from dau.data.splits import SplitPlan, load_plan
from dau.errors import CheckpointError
from dau.models import create_model, place_model
from dau.models.adapt import state_mismatch
from dau.runfiles import LOG, MANIFEST, METRICS, MODEL, SPLIT, STATE
from dau.supervisor import announce_run

__all__ = [
    "LOG",
    "MANIFEST",
    "METRICS",
    "MODEL",
    "SPLIT",
    "STATE",
    "Run",
    "atomic_write",
    "atomic_write_json",
    "check_resumable",
    "claim",
    "create_run_dir",
    "load_run",
    "save_model",
    "versions",
]

SCHEMA = 1


def save_model(path: str | Path, model: nn.Module, metadata: Mapping[str, str] | None = None) -> None:
    """Save a model's state dict (parameters and buffers) as safetensors, atomically."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    blob = save(tensors, metadata=dict(metadata or {}))
    with atomic_write(path) as fh:
        fh.write(blob)


def versions() -> dict[str, Any]:
    """Versions of everything that can change a result, for manifests and ``dau info``."""
    import dau

    info: dict[str, Any] = {
        "dau": dau.__version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        from dau import _native

        info["native"] = _native.__version__
    except ImportError as exc:
        info["native"] = f"unavailable ({exc})"
    try:
        from dau.ops import build_info

        info["ops"] = build_info()
    except Exception as exc:  # a missing op library is reported, not fatal here
        info["ops"] = f"unavailable ({exc})"
    return info


def create_run_dir(runs_dir: str | Path, name: str, out: str | Path | None = None) -> Path:
    """Make a new, empty run directory and prove it is writable.

    ``out`` names the directory exactly; otherwise ``runs_dir/name-<time>-<rand>``.
    An existing non-empty directory is never reused (nothing is overwritten).
    """
    if out is not None:
        path = Path(out)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise CheckpointError(
                f"-o/--out: {str(path)!r} already exists and is not an empty directory; "
                "choose a new path (nothing was overwritten)"
            )
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(runs_dir) / f"{name}-{stamp}-{secrets.token_hex(2)}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CheckpointError(
            f"cannot write the run directory {str(path)!r}: {exc.strerror or exc}; "
            "pass a writable --runs-dir or -o/--out"
        ) from None
    return path


@dataclass
class Run:
    """A run directory on disk and its manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind", "?"))

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.manifest.get("config", {}))

    def write_manifest(self) -> None:
        atomic_write_json(self.path / MANIFEST, self.manifest)

    def metrics(self) -> dict[str, Any]:
        path = self.path / METRICS
        if not path.exists():
            return {}
        return _read_json(path)

    def build_model(self) -> nn.Module:
        """A freshly initialised model of the run's architecture."""
        spec = self.manifest.get("model")
        if not isinstance(spec, Mapping):
            raise CheckpointError(f"{self.path / MANIFEST}: no 'model' section")
        if spec.get("arch") is None:
            raise CheckpointError(
                f"{self.path}: the model is a user's nn.Module that dau cannot rebuild by name; "
                "load model.safetensors into it (keys prefixed 'model.'), or save runs with "
                "dau.methods(..., arch='torchvision:NAME' / 'import:MODULE:CALLABLE')")
        external = {k: spec[k] for k in ("feature_layer", "capture") if spec.get(k)}
        try:
            return create_model(
                spec["arch"],
                num_classes=int(spec["num_classes"]),
                in_channels=int(spec["in_channels"]),
                mean=spec["mean"],
                std=spec["std"],
                width=float(spec["width"]),
                **external,
            )
        except KeyError as exc:
            raise CheckpointError(f"{self.path / MANIFEST}: model section lacks {exc}") from None

    def load_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The run's model with its saved weights, loaded strictly."""
        model = self.build_model()
        load_weights(model, self.path / MODEL)
        return place_model(model, device)

    def load_plan(self) -> SplitPlan:
        return load_plan(self.path / SPLIT)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{str(path)!r} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{str(path)!r}: expected a JSON object")
    return data


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load safetensors weights into ``model``; any missing, extra or mis-shaped key is an error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        tensors = load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{str(path)!r} does not exist") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{str(path)!r} is corrupt or not a safetensors file: {exc}") from None
    problem = state_mismatch(model.state_dict(), tensors)
    if problem is not None:
        raise CheckpointError(
            f"{str(path)!r} does not match the model in its manifest "
            f"(wrong architecture, width or class count?): {problem}"
        )
    model.load_state_dict(tensors, strict=True)


def load_run(path: str | Path) -> Run:
    """Open a run directory; errors say what is missing or corrupt."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"run {str(path)!r} is not a directory")
    manifest = _read_json(path / MANIFEST)
    if manifest.get("schema") != SCHEMA:
        raise CheckpointError(
            f"{path / MANIFEST}: unsupported manifest schema {manifest.get('schema')!r} "
            f"(this dau reads schema {SCHEMA})"
        )
    return Run(path=path, manifest=manifest)


def claim(run: Run) -> None:
    """Record this process in ``run``'s manifest as the one writing it (write it after), and
    announce the run to the ``dau`` command's supervisor (:mod:`dau.supervisor`)."""
    run.manifest["process"] = {"pid": os.getpid(), "host": platform.node()}
    announce_run(run.path)


def check_resumable(run: Run) -> None:
    """Raise CheckpointError unless ``--resume`` may continue ``run``: not complete, and not
    still written by a live process of this host (:func:`claim`)."""
    status, process = run.manifest.get("status"), run.manifest.get("process", {})
    if status == "complete":
        raise CheckpointError(f"--resume: run {str(run.path)!r} is already complete")
    pid = process.get("pid")
    if status == "running" and process.get("host") == platform.node() and _alive(pid):
        raise CheckpointError(
            f"--resume: run {str(run.path)!r} is still running (process {pid}); stop it first "
            "(if that process is another one, which reused its id, set the status in its "
            "manifest.json to \"interrupted\")")


def _alive(pid: Any) -> bool:
    """Whether process ``pid`` exists on this host."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def append_log(path: str | Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line (a line is small, so a crash loses at most that line)."""
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")
