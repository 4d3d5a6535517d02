"""Export a run's classifier as a self-contained TorchScript file.

The file holds the scripted defender (architecture, weights, BatchNorm running
statistics and the input normalisation, all inside) in eval mode, wrapped so that
``forward(x)`` takes float32 images ``[N, C, H, W]`` with values in ``[0, 1]`` and
returns the logits ``[N, num_classes]`` only; the penultimate features are not
returned (load the run with dau for those). It loads with plain
``torch.jit.load(path)`` in a process that never imports dau. A pruned run is
exported with its masks folded into the weights (pruned weights exactly zero).
The run's identity travels in the file as the extra file ``dau.json``.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from dau.errors import CheckpointError

__all__ = ["EXPORT_FORMATS", "Logits", "export_torchscript", "script"]

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("torchscript",)
DEFAULT_NAME = "model.torchscript.pt"
META_NAME = "dau.json"


class Logits(nn.Module):
    """A ``(logits, features)`` classifier reduced to its logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits, _ = self.model(x)
        return logits


def script(module: nn.Module) -> torch.jit.ScriptModule:
    """``torch.jit.script(module)`` without torch's deprecation warning for TorchScript."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*TorchScript.*")
        return torch.jit.script(module)


def export_torchscript(run_path: str | Path, out: str | Path | None = None, *,
                       force: bool = False) -> Path:
    """Write the TorchScript file of the run at ``run_path``; return its path.

    ``out`` defaults to ``<run>/model.torchscript.pt``. An existing file is only
    replaced with ``force``; the write is atomic.
    """
    from dau import __version__
    from dau.checkpoint import atomic_write, load_run
    from dau.pruning import MASKS, load_masks

    run = load_run(run_path)
    if run.manifest.get("status") != "complete":
        raise CheckpointError(f"{run.path}: a {run.manifest.get('status')} run has no final model "
                              "to export")
    target = Path(out) if out is not None else run.path / DEFAULT_NAME
    if target.is_dir():
        raise CheckpointError(f"-o/--out: {str(target)!r} is a directory; name the file to write")
    if not target.parent.is_dir():
        raise CheckpointError(f"-o/--out: the directory {str(target.parent)!r} does not exist")
    if target.exists() and not force:
        raise CheckpointError(f"-o/--out: {str(target)!r} already exists; pass --force to replace it")
    model = run.load_model("cpu")
    spec = dict(run.manifest.get("model", {}))
    folded = spec.get("masks", "none") != "none"
    if folded:
        masks = load_masks(run.path / MASKS, model)
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, mask in masks.items():
                params[name].mul_(mask.to(params[name].dtype))
    from dau.models.adapt import FeatureClassifier

    if isinstance(model, FeatureClassifier):  # a user's model: its logits are its own output
        logits: nn.Module = model.logits_model()
    else:
        logits = Logits(model)
    try:
        scripted = script(logits.eval())
    except Exception as exc:  # TorchScript rejects some user models' Python
        raise CheckpointError(f"{run.name}: TorchScript cannot compile this model "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    meta = {"dau": __version__, "run": run.name, "kind": run.kind, "model": spec,
            "masks_folded": folded, "returns": "logits"}
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer, _extra_files={META_NAME: json.dumps(meta)})
    try:
        with atomic_write(target) as fh:
            fh.write(buffer.getvalue())
    except OSError as exc:
        raise CheckpointError(f"-o/--out: cannot write {str(target)!r}: {exc.strerror or exc}") from None
    log.info("exported %s (%s, %s) to %s", run.name, spec.get("arch"),
             "masks folded" if folded else "dense", target)
    return target
