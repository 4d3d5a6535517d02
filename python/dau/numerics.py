"""The float32 precision policy of DAU's sensitivity feature (TF32 on Ampere+ GPUs).

On Ampere and later GPUs PyTorch may run float32 convolutions (cuDNN: by default)
and matmuls (when asked) in TF32, with a 10-bit mantissa: a relative rounding error
near 1e-3, the scale of DAU's finite-difference step σ = 1e-3. The finite-difference
sensitivity ``|f(x + σu) − f(x)| / σ`` then becomes mostly rounding noise, and so does
its gradient. The policy:

* ``--sensitivity fd`` (default): every DAU step that builds the attacker's input
  (its forward passes *and* the backward pass through them) runs in IEEE float32,
  TF32 off for cuDNN convolutions and CUDA matmuls; the previous settings are
  restored afterwards (the retain-only steps after a class-wise stop keep them).
* ``--sensitivity jvp``: the same quantity as a Jacobian-vector product
  (forward-mode AD, no cancellation), which stays meaningful under TF32; the global
  settings are left as they are.

:func:`policy` describes it for ``dau info`` and run manifests. On the CPU (and on
GPUs before Ampere) float32 is always IEEE; the switches change nothing there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from dau.config import SENSITIVITY

__all__ = ["SENSITIVITY_MODES", "float32_settings", "ieee_float32", "policy"]

SENSITIVITY_MODES = SENSITIVITY


def _new_api() -> bool:
    """Whether torch has the per-backend ``fp32_precision`` switches (torch ≥ 2.9).

    Mixing them with the legacy ``allow_tf32`` flags makes torch raise on reads, so
    only one of the two is ever used.
    """
    return hasattr(torch.backends.cudnn, "conv") and hasattr(
        torch.backends.cudnn.conv, "fp32_precision"
    )


def float32_settings() -> dict[str, str]:
    """How float32 cuDNN convolutions and CUDA matmuls may run now: ``ieee`` or ``tf32``.

    (``none`` in torch's new API means "inherit"; it is resolved here.)
    """
    if _new_api():
        conv = torch.backends.cudnn.conv.fp32_precision  # type: ignore[attr-defined]
        matmul = torch.backends.cuda.matmul.fp32_precision
        for parent in (torch.backends.cudnn, torch.backends):
            if conv == "none":
                conv = parent.fp32_precision
        if conv == "none":  # cuDNN's default: convolutions may use TF32
            conv = "tf32"
        if matmul == "none":
            matmul = torch.backends.fp32_precision  # type: ignore[attr-defined]
        if matmul == "none":  # the legacy switch: IEEE unless asked
            matmul = "ieee" if torch.get_float32_matmul_precision() == "highest" else "tf32"
        return {"cudnn_conv": conv, "cuda_matmul": matmul}
    return {
        "cudnn_conv": "tf32" if torch.backends.cudnn.allow_tf32 else "ieee",
        "cuda_matmul": "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee",
    }


@contextlib.contextmanager
def ieee_float32(enabled: bool = True) -> Iterator[None]:
    """Inside: float32 convolutions and matmuls on CUDA in IEEE float32 (TF32 off).

    The previous settings are restored on exit, also after an exception.
    """
    if not enabled:
        yield
        return
    if _new_api():
        conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul  # type: ignore[attr-defined]
        saved = (conv.fp32_precision, matmul.fp32_precision)
        conv.fp32_precision = "ieee"
        matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision, matmul.fp32_precision = saved
        return
    legacy = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = legacy


def policy(sensitivity: str = "fd") -> dict[str, Any]:
    """The precision policy of DAU's sensitivity passes, for ``dau info`` and manifests."""
    if sensitivity not in SENSITIVITY_MODES:
        raise ValueError(f"sensitivity must be one of {SENSITIVITY_MODES}, got {sensitivity!r}")
    return {
        "sensitivity": sensitivity,
        "adversarial_passes": (
            "ieee float32 (TF32 off for cuDNN convs and CUDA matmuls, restored after)"
            if sensitivity == "fd" else "global float32 settings (forward-mode JVP)"
        ),
        "global_float32": float32_settings(),
    }
