"""dau's fused torch operators, with typed wrappers.

The compiled kernels (``torch.ops.dau.*``, built from ``csrc/`` into
``libdau_ops.so``) are loaded lazily on first use. Every op has a pure-PyTorch
reference in :mod:`dau.ops.reference`, chosen with ``kernels="reference"``; the
default ``kernels="fused"`` never falls back to it silently: a missing library
raises :class:`~dau.errors.KernelUnavailableError` saying how to build it.

Ops:

``masked_sgd_``
    One ``torch.optim.SGD`` step over lists of tensors that never changes the
    entries whose mask is 0 (schema in ``csrc/registration.cpp``)::

        masked_sgd_(Tensor(a!)[] params, Tensor[] grads,
                    Tensor(b!)[] momentum_buffers, Tensor?[] masks,
                    float lr, float momentum, float dampening,
                    float weight_decay, bool nesterov, bool maximize,
                    bool first_step) -> ()

To call ``torch.ops.dau.masked_sgd_`` directly (TorchScript, ``torch.compile``),
call :func:`load` first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from dau.ops import _library, reference

__all__ = ["Kernels", "available", "build_info", "check_kernels", "load", "masked_sgd_"]

Kernels = Literal["fused", "reference"]
KERNELS: tuple[str, ...] = ("fused", "reference")


def check_kernels(kernels: str) -> None:
    """Raise ``ValueError`` unless ``kernels`` is ``"fused"`` or ``"reference"``."""
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be 'fused' or 'reference', got {kernels!r}")


def load() -> None:
    """Load the compiled op library (once); raise KernelUnavailableError if missing."""
    _library.load()


def available() -> bool:
    """Whether the compiled op library can be loaded."""
    try:
        _library.load()
    except Exception:
        return False
    return True


def build_info() -> dict[str, Any]:
    """How the op library was built (torch version, compiler, CUDA archs or why
    not) and whether it loads; never raises."""
    return _library.build_info()


def masked_sgd_(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    momentum_buffers: Sequence[Tensor] | None,
    masks: Sequence[Tensor | None] | None,
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
    first_step: bool,
    kernels: Kernels = "fused",
) -> None:
    """One SGD step over ``params``, in place, leaving masked-out entries untouched.

    Exactly ``torch.optim.SGD``'s update (weight decay, momentum with
    dampening, Nesterov, maximize) for every entry whose mask is non-zero;
    where the mask is 0 the param keeps its exact bits (pruned weights stay
    exactly zero, also under weight decay and momentum) and the momentum
    buffer is set to 0.

    Args:
        params: tensors updated in place (float32/64, float16, bfloat16; any
            strides without self-overlap).
        grads: one gradient per param, same shape, dtype and device.
        momentum_buffers: one buffer per param when ``momentum != 0`` (updated
            in place; on ``first_step`` its old contents are ignored); ``None``
            or empty when ``momentum == 0``.
        masks: ``None``/empty (all dense) or one mask per param: bool, uint8
            or the param's dtype, same shape and device, ``None`` = dense.
        lr, momentum, dampening, weight_decay, nesterov, maximize: as in
            ``torch.optim.SGD``.
        first_step: the buffers hold no history yet: the buffer becomes the
            gradient itself (SGD's behaviour when a param has no buffer).
        kernels: ``"fused"`` (compiled, default) or ``"reference"`` (pure PyTorch).

    Raises:
        KernelUnavailableError: ``kernels="fused"`` and the library, or its
            kernels for the tensors' device, are not built.
        RuntimeError: mismatched lengths, shapes, dtypes or devices.
        ValueError: a negative ``lr``, ``momentum`` or ``weight_decay``, or an
            unknown ``kernels``.
    """
    check_kernels(kernels)
    lr, momentum = float(lr), float(momentum)
    dampening, weight_decay = float(dampening), float(weight_decay)
    if lr < 0.0:
        raise ValueError(f"invalid learning rate: {lr}")
    if momentum < 0.0:
        raise ValueError(f"invalid momentum: {momentum}")
    if weight_decay < 0.0:
        raise ValueError(f"invalid weight_decay: {weight_decay}")
    param_list = list(params)
    buffer_list = list(momentum_buffers) if momentum_buffers is not None else []
    mask_list = list(masks) if masks is not None else []
    args = (
        param_list,
        list(grads),
        buffer_list,
        mask_list,
        lr,
        momentum,
        dampening,
        weight_decay,
        bool(nesterov),
        bool(maximize),
        bool(first_step),
    )
    if kernels == "reference":
        reference.masked_sgd_(*args)
        return
    if not param_list:
        # Nothing to update, and no tensor to pick a kernel by: just check.
        _library.load()
        reference.check_masked_sgd_arguments(
            param_list, args[1], buffer_list, mask_list, momentum, dampening, nesterov
        )
        return
    _library.require_device(param_list[0].device)
    with torch.no_grad():
        torch.ops.dau.masked_sgd_(*args)
