"""Autograd of the differentiable ``torch.ops.dau`` ops.

Registered with :func:`torch.library.register_autograd` by
:func:`dau.ops._library.load`, right after the fake kernels, so the ops are
differentiable when called through ``torch.ops.dau.*`` too (eager,
``torch.compile``, ``torch.export``); the typed wrappers of :mod:`dau.ops`
apply the same formulas through :func:`call`. The backward passes of
``sensitivity_features`` and ``cross_correlation_loss_forward`` are ops of
their own (``*_backward``, with CPU and CUDA kernels); that of
``noisy_replicate`` is a sum over the copies. ``cross_correlation_loss`` is the
loss of ``cross_correlation_loss_forward`` (a composite kernel registered here),
whose other outputs are what its backward reuses: the standardized features,
their statistics and the matrix products.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["call", "register"]

_lock = threading.Lock()
_registered = False
_functions: dict[str, type[torch.autograd.Function]] = {}


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


def _cross_correlation_loss_forward_setup(
    ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]
) -> None:
    val_features, forget_features, offdiag_weight, _eps = inputs
    saved = output[1:]  # v, f, stats, a, b: what the backward starts from
    ctx.save_for_backward(*saved)
    ctx.mark_non_differentiable(*saved)
    ctx.set_materialize_grads(False)
    ctx.rows = (val_features.shape[0], forget_features.shape[0])
    ctx.offdiag_weight = offdiag_weight


def _cross_correlation_loss_forward_backward(
    ctx: Any, grad: Tensor | None, *_: Tensor | None
) -> tuple[Tensor | None, ...]:
    if grad is None:
        return None, None, None, None
    grad_val, grad_forget = torch.ops.dau.cross_correlation_loss_backward(
        grad, *ctx.saved_tensors, *ctx.rows, ctx.offdiag_weight
    )
    return grad_val, grad_forget, None, None


def _cross_correlation_loss(
    val_features: Tensor, forget_features: Tensor, offdiag_weight: float, eps: float
) -> Tensor:
    """The composite kernel of ``dau::cross_correlation_loss``."""
    return torch.ops.dau.cross_correlation_loss_forward(
        val_features, forget_features, offdiag_weight, eps
    )[0]


_AUTOGRAD: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "dau::noisy_replicate": (_noisy_replicate_backward, _noisy_replicate_setup),
    "dau::sensitivity_features": (_sensitivity_features_backward, _sensitivity_features_setup),
    "dau::cross_correlation_loss_forward": (
        _cross_correlation_loss_forward_backward,
        _cross_correlation_loss_forward_setup,
    ),
}

# Ops made of others, by kernels registered for CompositeImplicitAutograd (so
# autograd, fake tensors and tracing see the ops they call).
_COMPOSITES: dict[str, Callable[..., Any]] = {
    "dau::cross_correlation_loss": _cross_correlation_loss,
}


def _function(name: str, backward: Callable[..., Any], setup: Callable[..., Any]) -> Any:
    """An autograd.Function computing ``torch.ops.dau.<name>`` with ``(backward, setup)``."""
    op = getattr(torch.ops.dau, name).default

    def forward(ctx: Any, *inputs: Any) -> Any:
        output = op(*inputs)
        setup(ctx, inputs, output)
        return output

    return type(f"{name}_function", (torch.autograd.Function,),
                {"forward": staticmethod(forward), "backward": staticmethod(backward)})


def call(name: str, *inputs: Any) -> Any:
    """``torch.ops.dau.<name>(*inputs)``, differentiable by the formula registered for it.

    What the typed wrappers of :mod:`dau.ops` call (after :func:`register`).
    The formula is the one the dispatcher's autograd kernel applies (to direct
    calls of the op, TorchScript and ``torch.compile``, which this leaves to
    it), here applied by a plain autograd.Function, with fewer Python layers
    per call (no walk over the schema, no redispatch), which is much of the
    cost of a small call (about 50 of 300 µs of a sensitivity_features forward
    and backward at B = 256, C = 10 on a 2-core CPU).
    """
    op = getattr(torch.ops.dau, name).default
    if (
        torch.compiler.is_compiling()
        or not torch.is_grad_enabled()
        or not any(isinstance(x, Tensor) and x.requires_grad for x in inputs)
    ):
        return op(*inputs)
    return _functions[name].apply(*inputs)


def register() -> None:
    """Register the backward formulas and the composite kernels (once per process)."""
    global _registered
    with _lock:
        if _registered:
            return
        for name, (backward, setup) in _AUTOGRAD.items():
            short = name.removeprefix("dau::")
            if hasattr(torch.ops.dau, short):
                torch.library.register_autograd(name, backward, setup_context=setup)
                _functions[short] = _function(short, backward, setup)
        for name, kernel in _COMPOSITES.items():
            if hasattr(torch.ops.dau, name.removeprefix("dau::")):
                torch.library.impl(name, "CompositeImplicitAutograd", kernel)
        _registered = True
