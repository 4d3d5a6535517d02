"""Finding and loading the compiled operator library, ``libdau_ops.so``.

The library sits next to the ``dau`` package (``python/dau/libdau_ops.so`` in a
checkout, ``site-packages/dau/libdau_ops.so`` in a wheel), together with
``_ops_build.json``, which ``csrc/build_ops.py`` writes to say how it was built.
It is loaded once, on first use, with ``torch.ops.load_library``; loading
registers the ``torch.ops.dau.*`` schemas and kernels, and then the fake
kernels of :mod:`dau.ops._fake` and the backward formulas of
:mod:`dau.ops._autograd` are registered.

A missing or unloadable library raises :class:`~dau.errors.KernelUnavailableError`
saying how to build it; nothing falls back silently to the reference kernels.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import torch

from dau.errors import KernelUnavailableError

__all__ = ["BUILD_HINT", "build_info", "library_path", "load", "require_device"]

LIBRARY_NAME = "libdau_ops.so"
BUILD_INFO_NAME = "_ops_build.json"
BUILD_HINT = (
    "build it with `pip install --no-build-isolation .` from the repository root, or "
    "`python csrc/build_ops.py --out-dir python/dau` in a checkout "
    "(or choose the pure-PyTorch kernels with --kernels reference)"
)

_lock = threading.Lock()
_loaded = False
_load_error: KernelUnavailableError | None = None


def package_dir() -> Path:
    """The folder of the ``dau`` package, where the library is looked for."""
    return Path(__file__).resolve().parent.parent


def library_path() -> Path:
    return package_dir() / LIBRARY_NAME


def _read_build_info(directory: Path) -> dict[str, Any] | None:
    path = directory / BUILD_INFO_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def build_info() -> dict[str, Any]:
    """How the op library was built (``_ops_build.json``) and whether it loads.

    Never raises: a missing library gives ``{"available": False, "error": ...}``.
    """
    path = library_path()
    info: dict[str, Any] = {"available": False, "library_path": str(path)}
    try:
        load()
    except KernelUnavailableError as exc:
        info["error"] = str(exc)
    else:
        info["available"] = True
        info["cuda_kernels"] = _has_kernel("masked_sgd_", "CUDA")
    recorded = _read_build_info(path.parent)
    if recorded is None:
        info["build_info"] = f"{BUILD_INFO_NAME} not found next to the library"
    else:
        # The summary first (what dau info shows on top), then the details.
        for key in ("backends", "torch_version", "cuda"):
            if key in recorded:
                info[key] = recorded[key]
        info.update({k: v for k, v in recorded.items() if k != "library" and k not in info})
    return info


def _load_from(path: Path) -> None:
    """Load the library at ``path`` and register the fake kernels (no caching)."""
    if not path.is_file():
        raise KernelUnavailableError(f"the dau operator library {path} is missing; {BUILD_HINT}")
    try:
        torch.ops.load_library(str(path))
    except (OSError, RuntimeError) as exc:
        recorded = _read_build_info(path.parent) or {}
        built_for = recorded.get("torch_version", "an unknown torch")
        raise KernelUnavailableError(
            f"cannot load the dau operator library {path} (built for torch {built_for}, "
            f"running torch {torch.__version__}): {exc}; rebuild it: {BUILD_HINT}"
        ) from exc
    from dau.ops import _autograd, _fake

    _fake.register()
    _autograd.register()


def load() -> None:
    """Load the op library once; raise KernelUnavailableError if it cannot be."""
    global _loaded, _load_error
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        if _load_error is not None:
            raise _load_error
        try:
            _load_from(library_path())
        except KernelUnavailableError as exc:
            _load_error = exc
            raise
        _loaded = True


def _has_kernel(op: str, dispatch_key: str) -> bool:
    return bool(torch._C._dispatch_has_kernel_for_dispatch_key(f"dau::{op}", dispatch_key))


def require_device(device: torch.device, op: str = "masked_sgd_") -> None:
    """Load the library and make sure it has ``op``'s kernel for ``device``."""
    load()
    if not hasattr(torch.ops.dau, op):
        raise KernelUnavailableError(
            f"the dau operator library {library_path()} has no op {op!r} (it was built from "
            f"older sources); rebuild it: {BUILD_HINT}"
        )
    if device.type == "cpu" or device.type == "meta":
        return
    if device.type == "cuda":
        if _has_kernel(op, "CUDA"):
            return
        recorded = _read_build_info(library_path().parent) or {}
        cuda = recorded.get("cuda") or {}
        reason = cuda.get("reason") or "the build info does not say why"
        raise KernelUnavailableError(
            f"dau's CUDA kernels are not built ({reason}); rebuild with DAU_CUDA=1 and nvcc "
            "available (`pip install nvidia-cuda-nvcc`), or use --kernels reference"
        )
    raise KernelUnavailableError(
        f"dau has no {op} kernel for {device.type} tensors (only cpu and cuda); "
        "use --kernels reference"
    )
