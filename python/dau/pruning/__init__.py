"""Pruning masks: one-shot magnitude pruning (OMP), loading, applying, sparsity.

A mask maps a parameter name to a 0/1 tensor of its shape; a model with masks is
stored dense with exact zeros at the pruned positions (masks folded) plus a
``masks.safetensors`` file. Masks saved by the reference code (state dicts with
``<conv>.weight_orig`` / ``<conv>.weight_mask``) load too, read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from dau.errors import CheckpointError, ConfigError

__all__ = ["MASKS", "load_masks", "match_masks", "omp_masks", "save_masks", "sparsity"]

MASKS = "masks.safetensors"


def omp_masks(model: nn.Module, ratio: float) -> dict[str, Tensor]:
    """Global L1 magnitude pruning over the weights of every ``nn.Conv2d``.

    The ``round(ratio × total)`` conv weights of smallest magnitude (over all conv
    layers jointly) get mask 0, as ``prune.global_unstructured(L1Unstructured)`` does
    in the reference pipeline; the fc layer and BatchNorm are not pruned.
    """
    if not 0 <= ratio < 1:
        raise ConfigError(f"--ratio: expected a pruning ratio in [0, 1), got {ratio}")
    convs = {f"{name}.weight" if name else "weight": m.weight
             for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if not convs:
        raise ConfigError("the model has no Conv2d layer to prune")
    flat = torch.cat([w.detach().abs().flatten().cpu() for w in convs.values()])
    k = round(ratio * flat.numel())
    keep = torch.ones_like(flat, dtype=torch.bool)
    if k > 0:
        keep[torch.topk(flat, k, largest=False).indices] = False
    masks, start = {}, 0
    for name, weight in convs.items():
        n = weight.numel()
        masks[name] = keep[start:start + n].view_as(weight).float()
        start += n
    return masks


def sparsity(masks: Mapping[str, Tensor]) -> float:
    """Fraction of masked (zero) entries over all masked tensors."""
    total = sum(m.numel() for m in masks.values())
    return 1.0 - sum(float(m.sum()) for m in masks.values()) / max(total, 1)


def save_masks(path: str | Path, masks: Mapping[str, Tensor]) -> None:
    from safetensors.torch import save

    from dau.checkpoint import atomic_write

    blob = save({k: v.detach().to("cpu", torch.uint8).contiguous() for k, v in masks.items()})
    with atomic_write(path) as fh:
        fh.write(blob)


def load_masks(path: str | Path, model: nn.Module | None = None) -> dict[str, Tensor]:
    """Masks from a run directory, a ``masks.safetensors`` file or a reference checkpoint.

    With ``model`` given, every mask must name one of its parameters with the same shape.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MASKS
    if not path.is_file():
        raise CheckpointError(f"--mask: {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            masks = {k: v.float() for k, v in load_file(str(path)).items()}
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"--mask: {str(path)!r} is corrupt: {exc}") from None
    else:
        masks = _reference_masks(path)
    if not masks:
        raise CheckpointError(f"--mask: {str(path)!r} holds no mask")
    return masks if model is None else match_masks(masks, model, f"--mask: {str(path)!r}")


def match_masks(masks: Mapping[str, Tensor], model: nn.Module, what: str) -> dict[str, Tensor]:
    """``masks`` keyed by ``model``'s parameter names: a mask named for a wrapped user model
    (a :class:`~dau.models.adapt.FeatureClassifier`) gets its ``model.`` prefix. Every mask
    must name a parameter of its shape (:class:`CheckpointError` naming ``what`` if not)."""
    params = dict(model.named_parameters())
    out = {}
    for name, mask in masks.items():
        key = name if name in params else f"model.{name}"
        if key not in params or params[key].shape != mask.shape:
            raise CheckpointError(f"{what} has a mask for {name!r} {tuple(mask.shape)} that "
                                  "does not match the model")
        out[key] = mask
    return out


def _reference_masks(path: Path) -> dict[str, Tensor]:
    """``<name>.weight_mask`` entries of a reference (torch.save) checkpoint, as ``<name>.weight``."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"--mask: {str(path)!r} is not a safetensors file nor a torch checkpoint that loads "
            f"with weights_only=True: {exc}"
        ) from None
    if isinstance(data, Mapping) and "state_dict" in data:
        data = data["state_dict"]
    if not isinstance(data, Mapping):
        raise CheckpointError(f"--mask: {str(path)!r} holds no state dict")
    return {
        key[: -len("_mask")]: value.float()
        for key, value in data.items()
        if isinstance(key, str) and key.endswith(".weight_mask") and isinstance(value, Tensor)
    }
