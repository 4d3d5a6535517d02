"""Pure-PyTorch references of dau's torch operators.

Each function here defines what its fused kernel (``csrc/``) must compute: it is
the oracle of the op tests and the implementation behind ``--kernels
reference``. They are written to be obviously right, not fast.

The checks of the arguments live here too (:func:`check_masked_sgd_arguments`)
and are shared with the fake kernels, so the reference, the fake and the
compiled kernels reject the same inputs with the same ``RuntimeError`` text.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["check_masked_sgd_arguments", "masked_sgd_"]

_FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _fail(message: str) -> None:
    raise RuntimeError(f"masked_sgd_: {message}")


def check_masked_sgd_arguments(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    momentum_buffers: Sequence[Tensor],
    masks: Sequence[Tensor | None],
    momentum: float,
    dampening: float,
    nesterov: bool,
) -> None:
    """Raise ``RuntimeError`` unless the arguments are valid for ``masked_sgd_``.

    The rules (the same in every implementation): one grad per param; one
    momentum buffer per param when ``momentum != 0`` (else none or one per
    param, ignored); no masks or one per param (``None`` = dense); Nesterov
    needs ``momentum > 0`` and ``dampening == 0``; every param is a strided
    float32/float64/float16/bfloat16 tensor without self-overlap; its grad and
    buffer have its shape, dtype and device; its mask has its shape and device
    and is bool, uint8 or of the param's dtype.
    """
    n = len(params)
    if len(grads) != n:
        _fail(f"got {len(grads)} grads for {n} params; pass one grad per param")
    if momentum != 0.0:
        if len(momentum_buffers) != n:
            _fail(
                f"momentum is {momentum} so one momentum buffer per param is needed, got "
                f"{len(momentum_buffers)} buffers for {n} params"
            )
    elif len(momentum_buffers) not in (0, n):
        _fail(
            f"got {len(momentum_buffers)} momentum buffers for {n} params; "
            "pass none or one per param"
        )
    if len(masks) not in (0, n):
        _fail(
            f"got {len(masks)} masks for {n} params; "
            "pass none (all dense) or one per param (None = dense)"
        )
    if nesterov and not (momentum > 0.0 and dampening == 0.0):
        _fail(
            "Nesterov momentum requires momentum > 0 and dampening == 0, "
            f"got momentum={momentum} dampening={dampening}"
        )
    for i, p in enumerate(params):
        if p.layout != torch.strided:
            _fail(f"params[{i}] must be a strided (dense) tensor")
        if p.dtype not in _FLOAT_DTYPES:
            _fail(
                f"params[{i}] has dtype {p.dtype}; "
                "supported are float32, float64, float16 and bfloat16"
            )
        if _has_internal_overlap(p):
            _fail(
                f"params[{i}] has several elements in one memory location "
                "(an expanded view); it cannot be updated in place"
            )
        if p.device != params[0].device:
            _fail(
                f"params[{i}] is on {p.device} but params[0] is on {params[0].device}; "
                "all tensors of one call must be on one device"
            )
        _check_like(p, grads[i], "grads", i, same_dtype=True)
        if momentum != 0.0:
            _check_like(p, momentum_buffers[i], "momentum_buffers", i, same_dtype=True)
            if _has_internal_overlap(momentum_buffers[i]):
                _fail(
                    f"momentum_buffers[{i}] has several elements in one memory location "
                    "(an expanded view); it cannot be updated in place"
                )
        mask = masks[i] if masks else None
        if mask is not None:
            _check_like(p, mask, "masks", i, same_dtype=False)
            if mask.dtype not in (torch.bool, torch.uint8, p.dtype):
                _fail(
                    f"masks[{i}] has dtype {mask.dtype}; a mask must be bool, uint8 or "
                    f"the dtype of its param ({p.dtype})"
                )


def _check_like(param: Tensor, other: Tensor, name: str, i: int, *, same_dtype: bool) -> None:
    if other.layout != torch.strided:
        _fail(f"{name}[{i}] must be a strided (dense) tensor")
    if other.shape != param.shape:
        _fail(
            f"{name}[{i}] has shape {list(other.shape)} but params[{i}] has shape "
            f"{list(param.shape)}"
        )
    if other.device != param.device:
        _fail(f"{name}[{i}] is on {other.device} but params[{i}] is on {param.device}")
    if same_dtype and other.dtype != param.dtype:
        _fail(f"{name}[{i}] has dtype {other.dtype} but params[{i}] has dtype {param.dtype}")


def _has_internal_overlap(t: Tensor) -> bool:
    return any(size > 1 and stride == 0 for size, stride in zip(t.shape, t.stride(), strict=True))


def masked_sgd_(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    momentum_buffers: Sequence[Tensor],
    masks: Sequence[Tensor | None],
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
) -> None:
    """One ``torch.optim.SGD`` step, in place, that never touches masked entries.

    Per element, with ``m`` the mask (``None`` = all ones) and arithmetic in
    float32 for float16/bfloat16 tensors (rounded once when stored)::

        g = -grad if maximize else grad
        g = g + weight_decay * p                      # if weight_decay != 0
        if momentum != 0:
            b = g if first_step else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        p = p - lr * g

    stored only where ``m != 0``. Where ``m == 0`` the param keeps its exact
    bits and the momentum buffer becomes 0 (so a first-step buffer may start
    uninitialized, and pruned entries carry no momentum).
    """
    check_masked_sgd_arguments(params, grads, momentum_buffers, masks, momentum, dampening, nesterov)
    with torch.no_grad():
        for i, param in enumerate(params):
            compute = torch.float32 if param.dtype in (torch.float16, torch.bfloat16) else None
            compute = compute or param.dtype
            p = param.to(compute)
            g = grads[i].to(compute)
            if maximize:
                g = -g
            if weight_decay != 0.0:
                g = g + weight_decay * p
            mask = masks[i] if masks else None
            active = None if mask is None else mask != 0
            if momentum != 0.0:
                buffer = momentum_buffers[i]
                # The first step starts the buffer at g, as SGD does.
                b = g if first_step else momentum * buffer.to(compute) + (1.0 - dampening) * g
                g = g + momentum * b if nesterov else b
                new_buffer = b.to(buffer.dtype)
                if active is not None:
                    new_buffer = torch.where(active, new_buffer, torch.zeros_like(new_buffer))
                buffer.copy_(new_buffer)
            updated = (p - lr * g).to(param.dtype)
            if active is not None:
                updated = torch.where(active, updated, param)
            param.copy_(updated)
