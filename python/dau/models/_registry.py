"""A small registry of defender architectures (``create_model`` / ``list_models``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dau._registry import Registry
from dau.errors import ConfigError

__all__ = ["Normalize", "create_model", "list_models", "register_model"]

_MODELS: Registry[Callable[..., nn.Module]] = Registry("architecture", "--arch")


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a model factory under ``name``.

    A factory takes ``num_classes``, ``in_channels``, ``mean``, ``std`` and ``width``
    (and optional keywords) and returns a module whose forward maps float images in
    [0, 1] to ``(logits, features)``.
    """
    return _MODELS.register(name)


def list_models() -> list[str]:
    """Names of every registered architecture, sorted."""
    return _MODELS.names()


def create_model(
    name: str,
    *,
    num_classes: int,
    in_channels: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    width: float = 1.0,
    **kwargs: Any,
) -> nn.Module:
    """Build the architecture ``name`` for ``num_classes`` classes.

    ``mean``/``std`` are the per-channel normalisation constants applied inside
    the model (inputs are raw [0, 1] images, as in the reference code). ``name`` may
    also be ``torchvision:NAME``, ``timm:NAME`` or ``import:MODULE:CALLABLE``
    (:mod:`dau.models.adapt`): the model then gets a normalisation only when
    ``mean``/``std`` are given, and its features are taken at ``feature_layer``
    (``capture``: that layer's ``input`` or ``output``; default: the input of ``fc``).
    """
    if ":" in name:
        return _external(name, num_classes=num_classes, in_channels=in_channels, mean=mean,
                         std=std, **kwargs)
    factory = _MODELS.get(name)
    if num_classes < 2:
        raise ConfigError(f"num_classes: expected at least 2, got {num_classes}")
    if in_channels < 1:
        raise ConfigError(f"in_channels: expected at least 1, got {in_channels}")
    if not width > 0:
        raise ConfigError(f"--width: expected a positive width multiplier, got {width}")
    mean = tuple(mean) if mean is not None else (0.0,) * in_channels
    std = tuple(std) if std is not None else (1.0,) * in_channels
    if len(mean) != in_channels or len(std) != in_channels:
        raise ConfigError(
            f"normalisation: expected {in_channels} mean/std values (one per input channel), "
            f"got {len(mean)} and {len(std)}"
        )
    return factory(
        num_classes=num_classes, in_channels=in_channels, mean=mean, std=std, width=width, **kwargs
    )


def _external(name: str, *, num_classes: int, in_channels: int, mean: Sequence[float] | None,
              std: Sequence[float] | None, feature_layer: str | None = None,
              capture: str = "input") -> nn.Module:
    from dau.models.adapt import FeatureClassifier, build_classifier  # adapt imports this module

    model = build_classifier(name, num_classes=num_classes, in_channels=in_channels)
    norm = Normalize(mean, std) if mean is not None and std is not None else None
    return FeatureClassifier(model, feature_layer or "fc", capture=capture, normalize=norm)


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` inside the model; the constants are buffers."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if any(s <= 0 for s in std):
            raise ConfigError(f"normalisation std must be positive, got {tuple(std)}")
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    if TYPE_CHECKING:  # buffers; not class annotations at run time, which TorchScript rejects
        mean: torch.Tensor
        std: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def scaled(channels: int, width: float) -> int:
    """Channel count after the width multiplier (at least 1)."""
    return max(1, round(channels * width))
