"""``prune()``: a sparse model by one-shot magnitude pruning, rewinding and retraining.

As the Unlearn-Sparse pipeline (spec §4.2): global L1 pruning of the conv weights of
the trained model, the weights rewound to those saved after ``rewind_epoch`` epochs
of the same training run, the learning-rate schedule rewound as many epochs, then
training again with the mask (MaskedSGD keeps the pruned weights at exactly zero).
"""

from __future__ import annotations

import logging
from pathlib import Path

from dau import checkpoint as ckpt
from dau.config import TrainConfig
from dau.errors import CheckpointError

__all__ = ["prune"]

log = logging.getLogger(__name__)


def prune(
    model: str | Path,
    ratio: float,
    *,
    epochs: int | None = None,
    device: str = "auto",
    kernels: str | None = None,
    runs_dir: str | Path = "runs",
    out: str | Path | None = None,
    progress: bool = True,
) -> ckpt.Run:
    """Prune the run ``model`` to ``ratio`` sparsity of its conv weights and retrain it."""
    from safetensors.torch import load_file

    from dau.pruning import omp_masks, sparsity
    from dau.training import train

    parent = ckpt.load_run(model)
    if parent.manifest.get("status") != "complete":
        raise CheckpointError(f"--model: {parent.path} is not a complete run")
    rewind = parent.manifest.get("rewind")
    if not rewind or not (parent.path / rewind["file"]).exists():
        raise CheckpointError(
            f"--model: {parent.path} has no rewind weights; train it again with --rewind-epoch K"
        )
    masks = omp_masks(parent.load_model(), ratio)
    values = {**parent.config, "device": device}
    if epochs is not None:
        values["epochs"] = epochs
    if kernels is not None:
        values["kernels"] = kernels
    config = TrainConfig.from_dict(values)
    log.info("pruning %s to %.1f %% sparse conv weights (rewinding to epoch %d)",
             parent.name, 100 * sparsity(masks), rewind["epoch"])
    return train(
        config, runs_dir=runs_dir, out=out, progress=progress, masks=masks,
        init=load_file(str(parent.path / rewind["file"])), lr_rewind=int(rewind["epoch"]),
        parent=str(parent.path.resolve()),
        pruning={"method": "omp", "ratio": ratio, "sparsity": sparsity(masks),
                 "rewind_epoch": int(rewind["epoch"])},
        name=f"{config.dataset.split(':')[0]}-{config.arch}-{config.kind}-sparse{ratio:g}",
    )
