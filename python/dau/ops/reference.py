"""Pure-PyTorch references of dau's torch operators.

Each function here defines what its fused kernel (``csrc/``) must compute: it is
the oracle of the op tests and the implementation behind ``--kernels
reference``. They are written to be obviously right, not fast.

The checks of the arguments live here too (:func:`check_masked_sgd_arguments`)
and are shared with the fake kernels, so the reference, the fake and the
compiled kernels reject the same inputs with the same ``RuntimeError`` text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "check_cross_correlation_loss_arguments",
    "check_masked_sgd_arguments",
    "check_noisy_replicate_arguments",
    "check_sensitivity_features_arguments",
    "counter_normal",
    "cross_correlation_loss",
    "masked_sgd_",
    "noisy_replicate",
    "sensitivity_features",
    "standardize",
]

_FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _fail_op(op: str, message: str) -> None:
    raise RuntimeError(f"{op}: {message}")


def _fail(message: str) -> None:
    _fail_op("masked_sgd_", message)


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


# ------------------------------------------------------ noisy_replicate ---

_MASK64 = (1 << 64) - 1
#: SplitMix64's increment (the golden ratio in 64-bit fixed point).
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_MIX_MUL1 = 0xBF58476D1CE4E5B9
_MIX_MUL2 = 0x94D049BB133111EB


def _signed64(value: int) -> int:
    """``value`` mod 2**64 as a signed int64 (two's complement)."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def mix64(value: int) -> int:
    """SplitMix64's finaliser of a Python int taken mod 2**64 (result in [0, 2**64))."""
    z = value & _MASK64
    z = ((z ^ (z >> 30)) * _MIX_MUL1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX_MUL2) & _MASK64
    return z ^ (z >> 31)


def seed_key(seed: int) -> int:
    """The 64-bit key of a seed: ``mix64(seed mod 2**64)``."""
    return mix64(seed)


def _shr(z: Tensor, bits: int) -> Tensor:
    """Logical right shift of int64 tensors holding uint64 bit patterns."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def _mix64_tensor(z: Tensor) -> Tensor:
    # int64 multiplication wraps mod 2**64, which is the uint64 product's bits.
    z = (z ^ _shr(z, 30)) * _signed64(_MIX_MUL1)
    z = (z ^ _shr(z, 27)) * _signed64(_MIX_MUL2)
    return z ^ _shr(z, 31)


def counter_normal(seed: int, counters: Tensor) -> Tensor:
    """The standard normal of each counter (int64 tensor, >= 0), in float64.

    The generator of :func:`noisy_replicate` (every implementation computes
    exactly this, the fused ones in float32 arithmetic)::

        key = mix64(seed mod 2**64)              # mix64: SplitMix64's finaliser
        q   = c >> 1                             # counters 2q and 2q+1 share one draw
        z   = mix64(key + q * 0x9E3779B97F4A7C15 mod 2**64)
        u1  = ((z >> 40) + 1) * 2**-24           # top 24 bits, in (0, 1]
        u2  = (z & 0xFFFFFF) * 2**-24            # low 24 bits, in [0, 1)
        r   = sqrt(-2 ln u1)
        n   = r cos(2 pi u2) if c is even else r sin(2 pi u2)

    (Box-Muller on a counter-based SplitMix64 stream). ``|n| <= sqrt(48 ln 2)
    ~ 5.77`` because u1 >= 2**-24.
    """
    key = _signed64(seed_key(seed))
    z = _mix64_tensor((counters >> 1) * _signed64(GOLDEN_GAMMA) + key)
    u1 = (_shr(z, 40) + 1).to(torch.float64) * 2.0**-24
    u2 = (z & 0xFFFFFF).to(torch.float64) * 2.0**-24
    radius = torch.sqrt(-2.0 * torch.log(u1))
    angle = 2.0 * math.pi * u2
    return torch.where(counters % 2 == 0, radius * torch.cos(angle), radius * torch.sin(angle))


def check_noisy_replicate_arguments(x: Tensor, m: int, sigma: float, offset: int) -> None:
    """Raise ``RuntimeError`` unless the arguments are valid for ``noisy_replicate``."""
    if x.layout != torch.strided:
        _fail_op("noisy_replicate", "x must be a strided (dense) tensor")
    if x.dim() < 1:
        _fail_op("noisy_replicate", "x must have a batch dimension, got a 0-dim tensor")
    if x.dtype not in _FLOAT_DTYPES:
        _fail_op(
            "noisy_replicate",
            f"x has dtype {x.dtype}; supported are float32, float64, float16 and bfloat16",
        )
    if m < 1:
        _fail_op("noisy_replicate", f"the number of noisy copies m must be >= 1, got {m}")
    if not math.isfinite(sigma):
        _fail_op("noisy_replicate", f"sigma must be finite, got {sigma}")
    if offset < 0:
        _fail_op("noisy_replicate", f"offset must be >= 0, got {offset}")


def noisy_replicate(x: Tensor, m: int, sigma: float, seed: int, offset: int) -> Tensor:
    """``x`` followed by ``m`` noisy copies of it: ``[(m + 1) * B, *S]``.

    Rows ``0..B-1`` are ``x``; row ``(j + 1) * B + b`` is ``x[b] + sigma * n``
    where element ``d`` (flat index within ``S``, ``D = prod(S)``) takes the
    normal of counter ``offset + (j * B + b) * D + d`` from
    :func:`counter_normal`. The same ``(seed, offset)`` gives the same noise on
    every run and device; a caller drawing fresh noise advances ``offset`` by
    ``m * B * D``. The gradient w.r.t. ``x`` is the sum over the ``m + 1``
    copies.
    """
    check_noisy_replicate_arguments(x, m, sigma, offset)
    count = m * x.numel()
    counters = torch.arange(count, dtype=torch.int64, device=x.device) + offset
    noise = counter_normal(seed, counters).view(m, *x.shape)
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    noisy = (x.to(compute).unsqueeze(0) + sigma * noise.to(compute)).to(x.dtype)
    return torch.cat([x.unsqueeze(0), noisy]).flatten(0, 1)


# ------------------------------------------------- sensitivity_features ---


def check_sensitivity_features_arguments(
    logits: Tensor, noisy_logits: Tensor, labels: Tensor, sigma: float, num_classes: int
) -> int:
    """Raise ``RuntimeError`` unless the arguments are valid; return the copies ``m``.

    Shapes and dtypes only: the range of ``labels`` is checked where their
    values are read (reference and kernels), not by the fake kernel.
    """
    op = "sensitivity_features"
    for name, t in (("logits", logits), ("noisy_logits", noisy_logits), ("labels", labels)):
        if t.layout != torch.strided:
            _fail_op(op, f"{name} must be a strided (dense) tensor")
    if logits.dim() != 2:
        _fail_op(op, f"logits must be 2-D [B, C], got shape {list(logits.shape)}")
    batch, classes = logits.shape
    if logits.dtype not in _FLOAT_DTYPES:
        _fail_op(
            op, f"logits has dtype {logits.dtype}; supported are float32, float64, float16 "
            "and bfloat16"
        )
    if noisy_logits.dim() != 2 or noisy_logits.shape[1] != classes:
        _fail_op(
            op, f"noisy_logits must be [m * B, C] = [m * {batch}, {classes}], got shape "
            f"{list(noisy_logits.shape)}"
        )
    if noisy_logits.dtype != logits.dtype:
        _fail_op(op, f"noisy_logits has dtype {noisy_logits.dtype} but logits has {logits.dtype}")
    if labels.dim() != 1 or labels.shape[0] != batch:
        _fail_op(op, f"labels must be 1-D [B] = [{batch}], got shape {list(labels.shape)}")
    if labels.dtype != torch.int64:
        _fail_op(op, f"labels has dtype {labels.dtype}; it must be int64")
    for name, t in (("noisy_logits", noisy_logits), ("labels", labels)):
        if t.device != logits.device:
            _fail_op(op, f"{name} is on {t.device} but logits is on {logits.device}")
    if num_classes != classes:
        _fail_op(op, f"num_classes is {num_classes} but logits has {classes} columns")
    if not (math.isfinite(sigma) and sigma > 0.0):
        _fail_op(op, f"sigma must be finite and > 0, got {sigma}")
    if batch == 0:
        _fail_op(op, "the batch is empty (B = 0)")
    rows = noisy_logits.shape[0]
    if rows == 0 or rows % batch != 0:
        _fail_op(
            op, f"noisy_logits has {rows} rows, not a positive multiple of the batch "
            f"size {batch} (m noisy copies of each row, copy-major)"
        )
    return rows // batch


def check_labels_in_range(labels: Tensor, num_classes: int, op: str) -> None:
    """Raise ``RuntimeError`` if a label is outside ``[0, num_classes)`` (reads the values)."""
    if labels.numel() and bool(((labels < 0) | (labels >= num_classes)).any()):
        bad = labels[(labels < 0) | (labels >= num_classes)][0].item()
        _fail_op(op, f"label {bad} is out of range for {num_classes} classes")


def sensitivity_features(
    logits: Tensor, noisy_logits: Tensor, labels: Tensor, sigma: float, num_classes: int
) -> Tensor:
    """The attacker's input ``[logits | one_hot(labels) | sensitivity]``: ``[B, 3C]``.

    ``noisy_logits`` holds ``m`` copies laid out copy-major (row ``j * B + b``
    is copy ``j`` of sample ``b``); the sensitivity of sample ``b`` is
    ``mean_j |noisy_logits[j * B + b] - logits[b]| / sigma``. Differentiable
    w.r.t. ``logits`` and ``noisy_logits`` (the derivative of ``|t|`` is
    ``sign(t)``, 0 at 0).
    """
    m = check_sensitivity_features_arguments(logits, noisy_logits, labels, sigma, num_classes)
    check_labels_in_range(labels, num_classes, "sensitivity_features")
    batch = logits.shape[0]
    delta = (noisy_logits.view(m, batch, -1) - logits.unsqueeze(0)).abs()
    sensitivity = delta.mean(0) / sigma
    one_hot = torch.nn.functional.one_hot(labels, num_classes).to(logits.dtype)
    return torch.cat([logits, one_hot, sensitivity], dim=1)


# ----------------------------------------------- cross_correlation_loss ---


def check_cross_correlation_loss_arguments(
    val_features: Tensor, forget_features: Tensor, offdiag_weight: float, eps: float
) -> None:
    """Raise ``RuntimeError`` unless the arguments are valid for ``cross_correlation_loss``."""
    op = "cross_correlation_loss"
    for name, t in (("val_features", val_features), ("forget_features", forget_features)):
        if t.layout != torch.strided:
            _fail_op(op, f"{name} must be a strided (dense) tensor")
        if t.dim() != 2:
            _fail_op(op, f"{name} must be 2-D [batch, features], got shape {list(t.shape)}")
        if t.dtype not in _FLOAT_DTYPES:
            _fail_op(
                op, f"{name} has dtype {t.dtype}; supported are float32, float64, float16 "
                "and bfloat16"
            )
    if forget_features.dtype != val_features.dtype:
        _fail_op(
            op, f"forget_features has dtype {forget_features.dtype} but val_features has "
            f"{val_features.dtype}"
        )
    if forget_features.device != val_features.device:
        _fail_op(
            op, f"forget_features is on {forget_features.device} but val_features is on "
            f"{val_features.device}"
        )
    if not math.isfinite(offdiag_weight):
        _fail_op(op, f"offdiag_weight must be finite, got {offdiag_weight}")
    if not (math.isfinite(eps) and eps >= 0.0):
        _fail_op(op, f"eps must be finite and >= 0, got {eps}")


def standardize(features: Tensor, eps: float) -> Tensor:
    """Per column ``(x - mean) / (unbiased std + eps)`` over the batch (dim 0)."""
    return (features - features.mean(0)) / (features.std(0) + eps)


def cross_correlation_loss(
    val_features: Tensor, forget_features: Tensor, offdiag_weight: float, eps: float
) -> Tensor:
    """Barlow-Twins-style loss between validation and forget features (0-dim).

    Over the first ``rows = min(B_v, B_f)`` rows of each (0 if ``rows < 2``):
    ``v``, ``f`` standardized per column (:func:`standardize`), ``C = vᵀ f /
    rows``, and the loss is ``Σ_i (C_ii − 1)² + w Σ_{i≠j} C_ij²`` (the diagonal
    runs over ``min(D_v, D_f)`` entries).
    """
    check_cross_correlation_loss_arguments(val_features, forget_features, offdiag_weight, eps)
    rows = min(val_features.shape[0], forget_features.shape[0])
    if rows < 2:
        return val_features.new_zeros(())
    v = standardize(val_features[:rows], eps)
    f = standardize(forget_features[:rows], eps)
    corr = v.T @ f / rows
    diag = torch.diagonal(corr)
    on = (diag - 1).pow(2).sum()
    off = corr.pow(2).sum() - diag.pow(2).sum()
    return on + offdiag_weight * off
