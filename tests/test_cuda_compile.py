"""The CUDA kernels compile (nvcc, no GPU needed): `csrc/build_ops.py --check-cuda-compile-only`.

Skipped when no nvcc is found; CI installs the nvidia-cuda-nvcc wheel, and
`make cuda-check` runs the same script directly.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD_OPS = ROOT / "csrc" / "build_ops.py"


def _build_ops() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dau_build_ops", BUILD_OPS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_cuda_kernels_compile() -> None:
    toolkit, why = _build_ops().find_cuda_toolkit(None)
    if toolkit is None:
        pytest.skip(why)
    proc = subprocess.run(
        [sys.executable, str(BUILD_OPS), "--check-cuda-compile-only"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "CUDA compile check passed" in proc.stdout


def test_cuda_arch_parsing() -> None:
    build_ops = _build_ops()
    flags, names = build_ops.parse_cuda_arch("8.0;9.0+PTX")
    assert names == ["sm_80", "sm_90", "compute_90"]
    assert flags == [
        "-gencode=arch=compute_80,code=[sm_80]",
        "-gencode=arch=compute_90,code=[sm_90,compute_90]",
    ]
    assert build_ops.parse_cuda_arch("sm_100a, 12.0")[1] == ["sm_100a", "sm_120"]
    with pytest.raises(build_ops.UsageError):
        build_ops.parse_cuda_arch("ampere")
