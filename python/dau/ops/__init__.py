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

``noisy_replicate``
    ``x`` followed by ``m`` copies of it plus Gaussian noise from a
    counter-based generator (same ``seed``/``offset`` = same noise on every
    run and device)::

        noisy_replicate(Tensor x, int m, float sigma, int seed, int offset) -> Tensor

``sensitivity_features``
    The attacker's input ``[logits | one_hot(labels) | mean_j |noisy - logits| / sigma]``::

        sensitivity_features(Tensor logits, Tensor noisy_logits, Tensor labels,
                             float sigma, int num_classes) -> Tensor

``cross_correlation_loss``
    ``Σ_i (C_ii − 1)² + w Σ_{i≠j} C_ij²`` of the standardized cross-correlation
    of validation and forget features::

        cross_correlation_loss(Tensor val_features, Tensor forget_features,
                               float offdiag_weight, float eps) -> Tensor

The last three are differentiable (their backward passes are ops too:
``sensitivity_features_backward``, ``cross_correlation_loss_backward``;
``cross_correlation_loss`` is the loss of ``cross_correlation_loss_forward``,
which also returns what its backward reuses).

To call ``torch.ops.dau.masked_sgd_`` (or any op) directly (TorchScript, ``torch.compile``),
call :func:`load` first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from dau.config import KERNELS
from dau.ops import _autograd, _library, reference

__all__ = [
    "Kernels",
    "available",
    "build_info",
    "check_kernels",
    "cross_correlation_loss",
    "load",
    "masked_sgd_",
    "noisy_replicate",
    "sensitivity_features",
]

Kernels = Literal["fused", "reference"]


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


def _int64(value: int) -> int:
    """A Python int taken mod 2**64, as the signed int64 the schemas carry."""
    return reference._signed64(int(value))


def noisy_replicate(
    x: Tensor, m: int, sigma: float, seed: int, offset: int, *, kernels: Kernels = "fused"
) -> Tensor:
    """``x`` and ``m`` noisy copies of it, stacked copy-major: ``[(m + 1) * B, *S]``.

    Row ``b`` is ``x[b]``; row ``(j + 1) * B + b`` is ``x[b] + sigma * n`` with
    ``n`` standard normal from a counter-based generator (SplitMix64 +
    Box-Muller, defined in :func:`dau.ops.reference.counter_normal`): element
    ``d`` of that row uses counter ``offset + (j * B + b) * D + d``, ``D =
    prod(S)``. The same ``(seed, offset)`` gives the same noise on every run,
    on CPU and CUDA (equal to float32 rounding); advance ``offset`` by ``m * B
    * D`` for fresh noise. Differentiable w.r.t. ``x`` (the gradient is the sum
    over the ``m + 1`` copies).

    Args:
        x: ``[B, *S]``, float32/float64/float16/bfloat16.
        m: noisy copies, >= 1.
        sigma: noise scale (the noise is computed in float32 precision).
        seed: any int (taken mod 2**64).
        offset: first counter, >= 0.
        kernels: ``"fused"`` (compiled, default) or ``"reference"`` (pure PyTorch).
    """
    check_kernels(kernels)
    m, sigma, offset = int(m), float(sigma), int(offset)
    if kernels == "reference":
        return reference.noisy_replicate(x, m, sigma, seed, offset)
    _library.require_device(x.device, "noisy_replicate")
    return _autograd.call("noisy_replicate", x, m, sigma, _int64(seed), offset)


def sensitivity_features(
    logits: Tensor,
    noisy_logits: Tensor,
    labels: Tensor,
    sigma: float,
    num_classes: int,
    *,
    kernels: Kernels = "fused",
) -> Tensor:
    """``[logits | one_hot(labels) | sensitivity]`` (``[B, 3C]``, logits' dtype).

    ``noisy_logits`` is ``[m * B, C]``, copy-major (row ``j * B + b`` is copy
    ``j`` of sample ``b``); ``sensitivity[b] = mean_j |noisy_logits[j * B + b]
    - logits[b]| / sigma``. Differentiable w.r.t. ``logits`` and
    ``noisy_logits``.

    Raises:
        RuntimeError: bad shapes or dtypes (labels must be int64),
            ``num_classes != C``, ``sigma <= 0``; on the CPU also a label
            outside ``[0, C)``. On CUDA such a label is a device-side
            assertion, as in torch's ``one_hot`` and ``cross_entropy``: a
            host-side check would synchronise the device on every call.
    """
    check_kernels(kernels)
    sigma, num_classes = float(sigma), int(num_classes)
    if kernels == "reference":
        return reference.sensitivity_features(logits, noisy_logits, labels, sigma, num_classes)
    _library.require_device(logits.device, "sensitivity_features")
    return _autograd.call(
        "sensitivity_features", logits, noisy_logits, labels, sigma, num_classes)


def cross_correlation_loss(
    val_features: Tensor,
    forget_features: Tensor,
    offdiag_weight: float,
    eps: float,
    *,
    kernels: Kernels = "fused",
) -> Tensor:
    """``Σ_i (C_ii − 1)² + w Σ_{i≠j} C_ij²`` with ``C = vᵀ f / rows`` (a 0-dim tensor).

    ``v`` and ``f`` are the first ``rows = min(B_v, B_f)`` rows of the two
    feature matrices, standardized per column (``(x − mean) / (unbiased std +
    eps)``); the loss is 0 when ``rows < 2``. Differentiable w.r.t. both
    inputs (rows past ``rows`` get zero gradient).
    """
    check_kernels(kernels)
    offdiag_weight, eps = float(offdiag_weight), float(eps)
    if kernels == "reference":
        return reference.cross_correlation_loss(val_features, forget_features, offdiag_weight, eps)
    _library.require_device(val_features.device, "cross_correlation_loss_forward")
    return _autograd.call(
        "cross_correlation_loss_forward", val_features, forget_features, offdiag_weight, eps)[0]
