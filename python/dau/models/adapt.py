"""Any classifier as a defender: ``forward(x) -> (logits, features)``.

dau's methods need the penultimate features (DAU's cross-correlation term) beside the
logits. :func:`as_defender` wraps a model that returns logits only (torchvision, timm, a
user's ``nn.Module``) in a :class:`FeatureClassifier` that captures, with a forward hook,
the input of the layer that produced the logits (found by one probing forward pass) or the
output of a layer the user names. Normalisation is never added unless asked for.

Architectures by name (:func:`build_classifier`): ``torchvision:NAME``
(``torchvision.models.get_model``, random init), ``timm:NAME`` (``timm.create_model``,
random init; ``pip install timm``), ``import:MODULE:CALLABLE`` (``CALLABLE(num_classes=N)``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dau.errors import CheckpointError, ConfigError
from dau.models._registry import Normalize

__all__ = [
    "EXTERNAL_PREFIXES",
    "FeatureClassifier",
    "as_defender",
    "build_classifier",
    "find_head",
    "load_state_dict",
    "state_mismatch",
]

EXTERNAL_PREFIXES = ("torchvision", "timm", "import")


class FeatureClassifier(nn.Module):
    """``model`` (returning logits) made to return ``(logits, features)``.

    ``features`` are the input of the module ``feature_layer`` when ``capture="input"``
    (the classification head), or its output when ``capture="output"`` (4-D outputs are
    average-pooled over their spatial dimensions); either way flattened to ``[N, D]``.
    ``normalize`` (per-channel mean/std) is applied to the input first when given.
    """

    def __init__(self, model: nn.Module, feature_layer: str, *, capture: str = "input",
                 normalize: Normalize | None = None) -> None:
        super().__init__()
        if capture not in ("input", "output"):
            raise ConfigError(f"capture: expected 'input' or 'output', got {capture!r}")
        layer = dict(model.named_modules()).get(feature_layer)
        if layer is None or feature_layer == "":
            raise ConfigError(f"feature_layer: the model has no submodule {feature_layer!r}; "
                              f"some of its modules: {_some_names(model)}")
        self.model = model
        self.normalize = normalize if normalize is not None else nn.Identity()
        self.feature_layer, self.capture = feature_layer, capture
        self._captured: torch.Tensor | None = None
        if capture == "input":
            self._hook = layer.register_forward_pre_hook(self._grab_input)
        else:
            self._hook = layer.register_forward_hook(self._grab_output)

    def logits_model(self) -> nn.Module:
        """The user's model behind its normalisation, returning logits only, without dau's
        feature hook (what TorchScript export compiles); this wrapper stops working."""
        self._hook.remove()
        return nn.Sequential(self.normalize, self.model)

    def _grab_input(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._captured = args[0]

    def _grab_output(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self._captured = output[0] if isinstance(output, (tuple, list)) else output

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._captured = None
        logits = _logits(self.model(self.normalize(x)))
        features, self._captured = self._captured, None
        if features is None:
            raise ConfigError(f"feature_layer {self.feature_layer!r} was not called by the "
                              "model's forward; name another layer")
        if features.dim() == 4 and self.capture == "output":
            features = features.mean(dim=(2, 3))
        return logits, features.flatten(1)


def _logits(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "logits") and isinstance(output.logits, torch.Tensor):
        return output.logits  # e.g. torchvision's GoogLeNet/Inception outputs in training mode
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ConfigError(f"the model must return a logits tensor; it returned {type(output).__name__}")


def _some_names(model: nn.Module, limit: int = 8) -> str:
    names = [n for n, _ in model.named_modules() if n][-limit:]
    return ", ".join(names) or "(none)"


def find_head(model: nn.Module, example: torch.Tensor) -> str:
    """The name of the ``nn.Linear`` whose output is the model's logits on ``example``.

    One forward pass in eval mode (without gradients) records every ``nn.Linear`` call;
    the head is the one whose output tensor the model returns, else the last one called
    with as many outputs as the logits have. Raises :class:`ConfigError` when none is.
    """
    calls: list[tuple[str, torch.Tensor]] = []
    handles = [module.register_forward_hook(
        lambda m, a, out, name=name: calls.append((name, out)))
        for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    try:
        logits = _logits(_probe(model, example))
    finally:
        for handle in handles:
            handle.remove()
    for name, out in reversed(calls):
        if out is logits:
            return name
    for name, out in reversed(calls):
        if out.shape[-1] == logits.shape[-1]:
            return name
    raise ConfigError(
        "the model has no final nn.Linear producing its logits, so dau cannot find the "
        "penultimate features DAU needs; name the layer whose output they are "
        f"(feature_layer= in Python, --feature-layer on the command line); its modules end "
        f"with: {_some_names(model)}")


def as_defender(model: nn.Module, example: torch.Tensor, *, num_classes: int,
                feature_layer: str | None = None,
                mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None) -> nn.Module:
    """``model`` as a dau defender, checked on ``example`` (a batch of dataset images).

    A model that already returns ``(logits, features)`` is returned as is (unless
    ``feature_layer`` is given); any other is wrapped in a :class:`FeatureClassifier`
    (features: the head's input, or ``feature_layer``'s output). ``mean``/``std``
    normalise inside the model; leave them out when the model or the data's transform
    already normalises. The logits must have ``num_classes`` columns.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    norm = None if mean is None and std is None else Normalize(
        tuple(mean or ()), tuple(std or ()))
    if norm is not None and (len(norm.mean.flatten()) != example.shape[1]
                             or len(norm.std.flatten()) != example.shape[1]):
        raise ConfigError(f"normalisation: expected {example.shape[1]} mean and std values "
                          "(one per image channel)")
    if feature_layer is None and norm is None and _returns_pair(model, example):
        wrapped: nn.Module = model
    else:
        probe = example if norm is None else norm(example)
        if feature_layer is None:
            wrapped = FeatureClassifier(model, find_head(model, probe), normalize=norm)
        else:
            capture = "input" if isinstance(dict(model.named_modules()).get(feature_layer),
                                            nn.Linear) else "output"
            wrapped = FeatureClassifier(model, feature_layer, capture=capture, normalize=norm)
    logits, features = _probe(wrapped, example)
    if logits.dim() != 2 or logits.shape[1] != num_classes:
        raise ConfigError(
            f"model: the data has {num_classes} classes but the model returns logits of shape "
            f"{tuple(logits.shape)}; build it with num_classes={num_classes}")
    if features.shape[0] != example.shape[0]:
        raise ConfigError(f"feature_layer: features of shape {tuple(features.shape)} for a "
                          f"batch of {example.shape[0]}; pick a per-sample layer")
    return wrapped


def _probe(model: nn.Module, example: torch.Tensor) -> Any:
    """``model(example)`` in eval mode without gradients; the mode is restored and a failure
    becomes a :class:`ConfigError` naming the input's shape."""
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            return model(example)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"model: a forward pass on a batch of the data of shape "
                          f"{tuple(example.shape)} failed: {type(exc).__name__}: {exc}") from None
    finally:
        model.train(was_training)


def _returns_pair(model: nn.Module, example: torch.Tensor) -> bool:
    out = _probe(model, example)
    return (isinstance(out, tuple) and len(out) == 2
            and all(isinstance(t, torch.Tensor) and t.dim() == 2 for t in out))


def build_classifier(arch: str, *, num_classes: int, in_channels: int) -> nn.Module:
    """A randomly initialised model named ``torchvision:NAME``, ``timm:NAME`` or
    ``import:MODULE:CALLABLE`` (called as ``CALLABLE(num_classes=num_classes)``)."""
    prefix, _, name = arch.partition(":")
    if prefix not in EXTERNAL_PREFIXES or not name:
        raise ConfigError(f"--arch: expected torchvision:NAME, timm:NAME or "
                          f"import:MODULE:CALLABLE; got {arch!r}")
    if prefix == "torchvision":
        import torchvision

        names = torchvision.models.list_models()
        if name not in names:
            import difflib

            close = difflib.get_close_matches(name, names, n=3)
            raise ConfigError(f"--arch: torchvision has no model {name!r}"
                              + (f" (did you mean {', '.join(close)}?)" if close else ""))
        if in_channels != 3:
            raise ConfigError(f"--arch {arch}: torchvision's models take 3-channel images; the "
                              f"data has {in_channels} (convert it in the source's transform)")
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    if prefix == "timm":
        try:
            import timm
        except ImportError:
            raise ConfigError("--arch timm:...: timm is not installed; pip install timm "
                              "(or dau[timm])") from None
        if not timm.is_model(name):
            raise ConfigError(f"--arch: timm has no model {name!r}")
        return timm.create_model(name, pretrained=False, num_classes=num_classes,
                                 in_chans=in_channels)
    module_name, _, attr = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"--arch {arch}: cannot import {attr!r} from {module_name!r}: "
                          f"{exc}") from None
    model = factory(num_classes=num_classes)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"--arch {arch}: returned a {type(model).__name__}, not an nn.Module")
    return model


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file: safetensors, or a ``torch.save``d state dict read with
    ``weights_only=True`` (a ``{"state_dict": ...}``/``{"model": ...}`` wrapper and
    DataParallel's ``module.`` prefixes are unwrapped). Never unpickles code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights: {str(path)!r} does not exist")
    with path.open("rb") as fh:
        head = fh.read(16)
    if path.suffix == ".safetensors" or (len(head) >= 9 and head[8:9] == b"{"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"weights: {str(path)!r} is not a readable safetensors file: "
                                  f"{exc}") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"weights: {str(path)!r} is neither safetensors nor a state dict that loads with "
            f"weights_only=True (whole pickled models are refused): {exc}") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"weights: {str(path)!r} does not hold a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def state_mismatch(expected: Mapping[str, torch.Tensor],
                   tensors: Mapping[str, torch.Tensor]) -> str | None:
    """What keeps ``tensors`` from loading strictly into a model whose state dict is
    ``expected`` (missing and unexpected keys, shape mismatches), or None."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = [f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items()
              if k in tensors and tuple(tensors[k].shape) != tuple(v.shape)]
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} key(s) (first: {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) (first: {unexpected[0]})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatch(es) (first: {shapes[0]})")
    return "; ".join(parts) or None
