"""Fake (meta) kernels of every ``torch.ops.dau`` op.

They let ``torch.compile``, ``torch.export`` and FakeTensor tracing reason about
the ops without running them: each checks its arguments exactly as the real
kernels do and produces outputs of the right shape (in-place ops return
nothing; ``cross_correlation_loss`` needs none, being a composite of
``cross_correlation_loss_forward``). :func:`register` is called by
:func:`dau.ops._library.load` right after the library has defined the schemas.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from dau.ops.reference import (
    check_cross_correlation_loss_arguments,
    check_masked_sgd_arguments,
    check_noisy_replicate_arguments,
    check_sensitivity_features_arguments,
)

__all__ = ["register"]

_lock = threading.Lock()
_registered = False


def _masked_sgd_fake(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor],
    masks: list[Tensor | None],
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
) -> None:
    check_masked_sgd_arguments(params, grads, momentum_buffers, masks, momentum, dampening, nesterov)


def _noisy_replicate_fake(x: Tensor, m: int, sigma: float, seed: int, offset: int) -> Tensor:
    check_noisy_replicate_arguments(x, m, sigma, offset)
    return x.new_empty(((m + 1) * x.shape[0], *x.shape[1:]))


def _sensitivity_features_fake(
    logits: Tensor, noisy_logits: Tensor, labels: Tensor, sigma: float, num_classes: int
) -> Tensor:
    check_sensitivity_features_arguments(logits, noisy_logits, labels, sigma, num_classes)
    return logits.new_empty((logits.shape[0], 3 * logits.shape[1]))


def _sensitivity_features_backward_fake(
    grad: Tensor, logits: Tensor, noisy_logits: Tensor, sigma: float
) -> tuple[Tensor, Tensor]:
    return logits.new_empty(logits.shape), noisy_logits.new_empty(noisy_logits.shape)


def _cross_correlation_products_by_m(rows: int, dv: int, df: int) -> bool:
    """Whether cross_correlation_loss_forward saves v^T f (else the Gram matrices).

    Mirrors ``by_m`` of ``csrc/cross_correlation_common.h``.
    """
    return 3 * dv * df <= 2 * rows * (dv + df)


def _cross_correlation_loss_forward_fake(
    val_features: Tensor, forget_features: Tensor, offdiag_weight: float, eps: float
) -> tuple[Tensor, ...]:
    check_cross_correlation_loss_arguments(val_features, forget_features, offdiag_weight, eps)
    rows = min(val_features.shape[0], forget_features.shape[0])
    dv, df = val_features.shape[1], forget_features.shape[1]
    compute = torch.float64 if val_features.dtype == torch.float64 else torch.float32

    def new(*shape: int) -> Tensor:
        return val_features.new_empty(shape, dtype=compute)

    if _cross_correlation_products_by_m(rows, dv, df):
        products = (new(dv, df), new(0, 0))
    else:
        products = (new(rows, rows), new(rows, rows))
    return (val_features.new_empty(()), new(rows, dv), new(rows, df),
            new(2 * dv + 2 * df + min(dv, df)), *products)


def _cross_correlation_loss_backward_fake(
    grad: Tensor, v: Tensor, f: Tensor, stats: Tensor, a: Tensor, b: Tensor, val_rows: int,
    forget_rows: int, offdiag_weight: float,
) -> tuple[Tensor, Tensor]:
    return grad.new_empty((val_rows, v.shape[1])), grad.new_empty((forget_rows, f.shape[1]))


_FAKES: dict[str, Callable[..., Any]] = {
    "dau::masked_sgd_": _masked_sgd_fake,
    "dau::noisy_replicate": _noisy_replicate_fake,
    "dau::sensitivity_features": _sensitivity_features_fake,
    "dau::sensitivity_features_backward": _sensitivity_features_backward_fake,
    "dau::cross_correlation_loss_forward": _cross_correlation_loss_forward_fake,
    "dau::cross_correlation_loss_backward": _cross_correlation_loss_backward_fake,
}


def register() -> None:
    """Register the fake kernels (once per process)."""
    global _registered
    with _lock:
        if _registered:
            return
        for name, fake in _FAKES.items():
            if hasattr(torch.ops.dau, name.removeprefix("dau::")):
                torch.library.register_fake(name, fake)
        _registered = True
