"""Softmax predictions of a model over an in-memory image set, and top-1 accuracy.

:func:`predict` runs the model once over a set and keeps what every later metric
needs (the softmax probabilities and the labels) as a :class:`Predictions`, so
that accuracy and all membership-inference features are computed from one pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dau.errors import ConfigError, DataError
from dau.progress import progress_bar

__all__ = ["Predictions", "predict"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Predictions:
    """A model's softmax output on one set, with the true labels.

    Attributes:
        probs: float64 array ``[N, C]``, one softmax row per sample.
        labels: int64 array ``[N]``, the true classes, each in ``[0, C)``.

    Both arrays are private read-only copies. An empty set has ``N = 0`` (and
    ``C`` as the model reports it, or 0 when it could not be found out).
    """

    probs: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        probs = np.array(self.probs, dtype=np.float64, copy=True)
        labels = np.array(self.labels, copy=True)
        if probs.ndim != 2:
            raise DataError(f"probs must be a 2-D array [N, C], got shape {probs.shape}")
        if labels.ndim != 1:
            raise DataError(f"labels must be a 1-D array [N], got shape {labels.shape}")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"labels must be integers, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
        if probs.shape[0] != labels.shape[0]:
            raise DataError(
                f"probs has {probs.shape[0]} rows but there are {labels.shape[0]} labels"
            )
        if labels.size:
            lo, hi = int(labels.min()), int(labels.max())
            if lo < 0 or hi >= probs.shape[1]:
                raise DataError(
                    f"labels must lie in [0, {probs.shape[1]}) (the model's class count), "
                    f"found values in [{lo}, {hi}]"
                )
        if not np.all(np.isfinite(probs)):
            raise DataError("probs contains NaN or infinite values (did the model diverge?)")
        probs.flags.writeable = False
        labels.flags.writeable = False
        object.__setattr__(self, "probs", probs)
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: slice | np.ndarray | list[int]) -> Predictions:
        """The rows picked by a slice or an index array, as new Predictions."""
        return Predictions(self.probs[index], self.labels[index])

    @property
    def num_classes(self) -> int:
        return int(self.probs.shape[1])

    @property
    def correct(self) -> np.ndarray:
        """Boolean ``[N]``: whether the arg-max class equals the label."""
        if len(self) == 0:
            return np.zeros(0, dtype=bool)
        return np.asarray(self.probs.argmax(axis=1) == self.labels)

    @property
    def accuracy(self) -> float:
        """Top-1 accuracy in percent (NaN for an empty set)."""
        if len(self) == 0:
            return float("nan")
        return float(100.0 * self.correct.mean())


def _model_device(model: torch.nn.Module) -> torch.device | None:
    for param in model.parameters():
        return param.device
    for buffer in model.buffers():
        return buffer.device
    return None


def _logits_of(output: Any) -> torch.Tensor:
    if isinstance(output, (tuple, list)):
        if not output:
            raise DataError("the model returned an empty tuple; expected (logits, features)")
        output = output[0]
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        shape = getattr(output, "shape", None)
        raise DataError(
            f"the model must return (logits [N, C], features); got logits of shape {shape}"
        )
    return output


def _check_inputs(images: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise DataError("images and labels must be torch tensors")
    if images.ndim != 4:
        raise DataError(f"images must have shape [N, C, H, W], got {tuple(images.shape)}")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise DataError(f"images must be uint8 (or float in [0, 1]), got {images.dtype}")
    if labels.ndim != 1 or labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise DataError(
            f"labels must be a 1-D integer tensor, got {labels.dtype} {tuple(labels.shape)}"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{images.shape[0]} images but {labels.shape[0]} labels")


def predict(
    model: torch.nn.Module,
    images: Any,
    labels: torch.Tensor | None = None,
    *,
    batch_size: int = 512,
    device: str | torch.device | None = None,
    progress: bool = True,
    desc: str = "predict",
) -> Predictions:
    """Run ``model`` over a set and return its softmax probabilities.

    Args:
        model: returns ``(logits, features)`` for float images in ``[0, 1]``.
        images: ``uint8 [N, C, H, W]`` (float images in ``[0, 1]`` are used as they
            are), or a dataset part (``ImageData`` or streamed ``StreamData``, with
            ``labels`` left out). Batches are converted to float and divided by 255 on
            ``device``, so memory stays bounded by one batch.
        labels: ``int64 [N]``.
        batch_size: rows per forward pass.
        device: where to run; ``None`` means the device of the model's
            parameters. The model is not moved: it must already be there.
        progress: show progress on stderr (:mod:`dau.progress`).
        desc: the bar's label.

    The model runs in eval mode under ``torch.inference_mode``; its previous
    train/eval mode is restored afterwards. The softmax is taken in float32
    (as the reference does) and stored as float64.
    """
    part = labels is None
    if labels is None:
        if not hasattr(images, "subset") or not hasattr(images, "labels"):
            raise DataError(f"predict: without labels, images must be a dataset part "
                            f"(ImageData or StreamData); got {type(images).__name__}")
        labels = images.labels
    _check_inputs(images if not part else torch.zeros(len(images), 1, 1, 1), labels)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    model_device = _model_device(model)
    run_device = torch.device(device) if device is not None else model_device
    if run_device is None:
        run_device = torch.device("cpu")
    if model_device is not None and model_device.type != run_device.type:
        raise ConfigError(
            f"the model is on {model_device} but device={str(run_device)!r}; "
            f"move it first with model.to({str(run_device)!r})"
        )

    n = len(images) if part else int(images.shape[0])
    if part:
        from dau.data.loaders import iterate_batches

        batches = (x for x, _ in iterate_batches(images, torch.arange(n), batch_size,
                                                   augment=False, device=run_device))
    else:
        batches = (images[s:s + batch_size].to(run_device, non_blocking=True)
                   for s in range(0, n, batch_size))
    chunks: list[np.ndarray] = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            if n == 0:
                shape = (0, *images.shape) if part else images.shape
                chunks.append(_empty_probs(model, torch.zeros(shape), run_device))
            for batch in progress_bar(batches, enabled=progress, desc=desc, unit="batch",
                                      leave=False, total=-(-n // batch_size)):
                batch = batch.float().div_(255.0) if batch.dtype == torch.uint8 else batch.float()
                logits = _logits_of(model(batch))
                if logits.shape[0] != batch.shape[0]:
                    raise DataError(
                        f"the model returned {logits.shape[0]} rows for a batch of "
                        f"{batch.shape[0]} images"
                    )
                probs = torch.softmax(logits.float(), dim=1)
                chunks.append(probs.cpu().numpy().astype(np.float64))
    finally:
        model.train(was_training)

    probs_all = np.concatenate(chunks, axis=0)
    return Predictions(probs_all, labels.cpu().numpy().astype(np.int64))


def _empty_probs(model: torch.nn.Module, images: torch.Tensor, device: torch.device) -> np.ndarray:
    """A ``[0, C]`` array: run the model on an empty batch to learn ``C`` if it can."""
    try:
        logits = _logits_of(model(images.to(device).float()))
        return np.zeros((0, int(logits.shape[1])), dtype=np.float64)
    except Exception as exc:  # an empty batch is not something every model supports
        logger.debug("could not learn the class count from an empty batch: %s", exc)
        return np.zeros((0, 0), dtype=np.float64)
