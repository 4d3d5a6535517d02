"""Fake (meta) kernels of every ``torch.ops.dau`` op.

They let ``torch.compile``, ``torch.export`` and FakeTensor tracing reason about
the ops without running them: each checks its arguments exactly as the real
kernels do and produces outputs of the right shape (in-place ops return
nothing). :func:`register` is called by :func:`dau.ops._library.load` right
after the library has defined the schemas.
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor

from dau.ops.reference import check_masked_sgd_arguments

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


def register() -> None:
    """Register the fake kernels (once per process)."""
    global _registered
    with _lock:
        if _registered:
            return
        torch.library.register_fake("dau::masked_sgd_", _masked_sgd_fake)
        _registered = True
