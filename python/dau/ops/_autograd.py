"""Autograd of the differentiable ``torch.ops.dau`` ops.

Registered with :func:`torch.library.register_autograd` by
:func:`dau.ops._library.load`, right after the fake kernels, so the ops are
differentiable when called through ``torch.ops.dau.*`` too (eager,
``torch.compile``, ``torch.export``). The backward passes of
``sensitivity_features`` and ``cross_correlation_loss`` are ops of their own
(``*_backward``, with CPU and CUDA kernels); that of ``noisy_replicate`` is a
sum over the copies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["register"]

_lock = threading.Lock()
_registered = False


def _noisy_replicate_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    x, m = inputs[0], inputs[1]
    ctx.copies = m + 1
    ctx.x_shape = x.shape


def _noisy_replicate_backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    grad_x = grad.reshape(ctx.copies, *ctx.x_shape).sum(0)
    return grad_x, None, None, None, None


def _sensitivity_features_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    logits, noisy_logits, _labels, sigma, _num_classes = inputs
    ctx.save_for_backward(logits, noisy_logits)
    ctx.sigma = sigma


def _sensitivity_features_backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    logits, noisy_logits = ctx.saved_tensors
    grad_logits, grad_noisy = torch.ops.dau.sensitivity_features_backward(
        grad, logits, noisy_logits, ctx.sigma
    )
    return grad_logits, grad_noisy, None, None, None


def _cross_correlation_loss_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    val_features, forget_features, offdiag_weight, eps = inputs
    ctx.save_for_backward(val_features, forget_features)
    ctx.offdiag_weight = offdiag_weight
    ctx.eps = eps


def _cross_correlation_loss_backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    val_features, forget_features = ctx.saved_tensors
    grad_val, grad_forget = torch.ops.dau.cross_correlation_loss_backward(
        grad, val_features, forget_features, ctx.offdiag_weight, ctx.eps
    )
    return grad_val, grad_forget, None, None


_AUTOGRAD: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "dau::noisy_replicate": (_noisy_replicate_backward, _noisy_replicate_setup),
    "dau::sensitivity_features": (_sensitivity_features_backward, _sensitivity_features_setup),
    "dau::cross_correlation_loss": (
        _cross_correlation_loss_backward,
        _cross_correlation_loss_setup,
    ),
}


def register() -> None:
    """Register the backward formulas (once per process)."""
    global _registered
    with _lock:
        if _registered:
            return
        for name, (backward, setup) in _AUTOGRAD.items():
            if hasattr(torch.ops.dau, name.removeprefix("dau::")):
                torch.library.register_autograd(name, backward, setup_context=setup)
        _registered = True
