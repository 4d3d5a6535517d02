#!/usr/bin/env python3
"""Build dau's torch operator library, ``libdau_ops.so``.

Usage::

    python csrc/build_ops.py --out-dir python/dau [--cuda auto|0|1] [--force] [-v]
    python csrc/build_ops.py --check-cuda-compile-only
    python csrc/build_ops.py --nvcc-requirements

The library holds every schema (``csrc/registration.cpp``), the CPU kernels
(``csrc/cpu/*.cpp``) and, when asked for and possible, the CUDA kernels
(``csrc/cuda/*.cu``). It is compiled with the system C++ compiler (``$CXX``,
else ``c++``) against the headers of the installed torch, using only torch's
stable ABI (``TORCH_STABLE_ONLY``) and targeting torch 2.10
(``TORCH_TARGET_VERSION``), so one build loads into every torch >= 2.10.
Headers shared by the kernels (``csrc/*.h``) are included by relative path.

CUDA (``--cuda``, default ``$DAU_CUDA``, else ``auto``):

* ``0``: never; ``1``: always (an error if it cannot be done);
* ``auto``: when torch is a CUDA build and an nvcc of the same CUDA major
  version is found, looked for in ``$CUDA_HOME``/``$CUDA_PATH``, on ``PATH``
  and in the PyPI ``nvidia-cuda-nvcc`` wheel (``site-packages/nvidia/cu13/bin``
  or ``nvidia/cuda_nvcc/bin``). Headers and ``libcudart`` then come from the
  nvidia wheels that torch itself depends on.

The architectures are ``$DAU_CUDA_ARCH`` (for example ``"8.0;9.0+PTX"`` or
``"sm_80 sm_90+PTX"``), default ``8.0;9.0+PTX``.

Outputs, each written to a temporary name and renamed into place:
``<out-dir>/libdau_ops.so`` and ``<out-dir>/_ops_build.json`` (torch version,
compiler, flags, whether CUDA was built and for which architectures or why
not). A build whose inputs (sources, the headers under ``csrc/``, compiler,
flags, torch version) have not changed is skipped unless ``--force``.

``--check-cuda-compile-only`` compiles the ``.cu`` files to object files in a
temporary folder and exits non-zero on a compile error; it needs nvcc but no
GPU and no CUDA build of torch. nvcc's major.minor version must equal that of
the CUDA runtime headers (torch's ``nvidia-cuda-runtime`` wheel);
``--nvcc-requirements`` prints the pip requirements of such an nvcc, e.g.
``nvidia-cuda-nvcc==13.2.* nvidia-cuda-crt==13.2.* nvidia-nvvm==13.2.*``.
Exit codes: 0 ok, 1 compile or link error, 2 usage error or a missing tool.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CSRC = Path(__file__).resolve().parent
LIBRARY_NAME = "libdau_ops.so"
BUILD_INFO_NAME = "_ops_build.json"
# The oldest torch whose stable ABI the library is compiled for.
TARGET_TORCH = (2, 10)
TARGET_VERSION_MACRO = f"0x{(TARGET_TORCH[0] << 56) | (TARGET_TORCH[1] << 48):016x}"
DEFAULT_CUDA_ARCH = "8.0;9.0+PTX"
CXX_STD = "c++17"
# The pip wheels that make up nvcc for CUDA >= 13; their version must match
# the CUDA runtime headers (nvidia-cuda-runtime, which torch depends on).
NVCC_WHEELS = ("nvidia-cuda-nvcc", "nvidia-cuda-crt", "nvidia-nvvm")


class BuildError(Exception):
    """A compile or link step failed (exit code 1)."""


class UsageError(Exception):
    """Bad arguments or a missing tool (exit code 2)."""


@dataclass
class CudaToolkit:
    """An nvcc and where its headers and runtime library are."""

    nvcc: Path
    version: str
    from_wheel: bool
    include_dirs: list[Path] = field(default_factory=list)
    library_dir: Path | None = None
    cudart: str | None = None


# ----------------------------------------------------------------- helpers --


def _log(message: str) -> None:
    print(message, flush=True)


def _run(cmd: Sequence[str], verbose: bool) -> None:
    if verbose:
        _log("$ " + shlex.join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        raise BuildError(f"command failed (exit {proc.returncode}): {shlex.join(cmd)}\n{output}")
    if verbose and (proc.stdout or proc.stderr):
        _log((proc.stdout + proc.stderr).rstrip())


def _first_line(cmd: Sequence[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _site_packages_dirs() -> list[Path]:
    """Folders where pip installs packages for this interpreter, torch's first."""
    dirs: list[Path] = []
    try:
        import torch

        dirs.append(Path(torch.__file__).resolve().parent.parent)
    except ImportError:
        pass
    for key in ("purelib", "platlib"):
        dirs.append(Path(sysconfig.get_paths()[key]))
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d not in seen:
            seen.append(d)
    return seen


def _nvidia_dirs(*relative: str) -> list[Path]:
    found: list[Path] = []
    for site in _site_packages_dirs():
        for rel in relative:
            path = site / "nvidia" / rel
            if path.exists() and path not in found:
                found.append(path)
    return found


# ------------------------------------------------------------------ torch ---


def _import_torch():  # type: ignore[no-untyped-def]
    try:
        import torch
        import torch.utils.cpp_extension
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UsageError(f"torch is not importable by {sys.executable}: {exc}") from exc
    version = tuple(int(x) for x in re.findall(r"\d+", torch.__version__)[:2])
    if version < TARGET_TORCH:
        raise UsageError(
            f"torch {torch.__version__} is too old: the op library uses the stable ABI of "
            f"torch >= {TARGET_TORCH[0]}.{TARGET_TORCH[1]}"
        )
    return torch


# ------------------------------------------------------------------- CUDA ---


def _nvcc_version(nvcc: Path) -> str | None:
    try:
        proc = subprocess.run(
            [str(nvcc), "--version"], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"release (\d+\.\d+)", proc.stdout)
    return match.group(1) if match else None


def _nvcc_candidates() -> list[tuple[Path, bool]]:
    """(nvcc, comes from a pip wheel) in the order they are preferred."""
    candidates: list[tuple[Path, bool]] = []
    for var in ("CUDA_HOME", "CUDA_PATH"):
        root = os.environ.get(var)
        if root:
            candidates.append((Path(root) / "bin" / "nvcc", False))
    on_path = shutil.which("nvcc")
    if on_path:
        candidates.append((Path(on_path), False))
    for bin_dir in _nvidia_dirs("cu13/bin", "cu12/bin", "cuda_nvcc/bin"):
        candidates.append((bin_dir / "nvcc", True))
    unique: list[tuple[Path, bool]] = []
    for nvcc, from_wheel in candidates:
        usable = nvcc.is_file() and os.access(nvcc, os.X_OK)
        if usable and all(nvcc.resolve() != other.resolve() for other, _ in unique):
            unique.append((nvcc, from_wheel))
    return unique


def _cuda_runtime_dirs(toolkit: CudaToolkit) -> None:
    """Fill in the include dirs and the cudart library of a toolkit."""
    major = toolkit.version.split(".")[0]
    if toolkit.from_wheel:
        # nvcc from a wheel: headers from the runtime and cccl wheels.
        toolkit.include_dirs = _nvidia_dirs(
            f"cu{major}/include",
            f"cu{major}/include/cccl",
            "cuda_runtime/include",
            "cuda_cccl/include",
        )
    lib_dirs = _nvidia_dirs(f"cu{major}/lib", "cuda_runtime/lib")
    if not toolkit.from_wheel:
        root = toolkit.nvcc.resolve().parent.parent
        lib_dirs += [root / "lib64", root / "lib", root / "targets/x86_64-linux/lib"]
    for lib_dir in lib_dirs:
        libs = sorted(lib_dir.glob(f"libcudart.so.{major}*")) if lib_dir.is_dir() else []
        if libs:
            toolkit.library_dir = lib_dir
            # Link against the soname torch itself loads (libcudart.so.<major>).
            exact = lib_dir / f"libcudart.so.{major}"
            toolkit.cudart = exact.name if exact.exists() else libs[0].name
            return


def _cudart_header_version(toolkit: CudaToolkit) -> str | None:
    """CUDART_VERSION of the cuda_runtime_api.h that nvcc will see, as "13.2"."""
    dirs = [*toolkit.include_dirs, toolkit.nvcc.resolve().parent.parent / "include"]
    for directory in dirs:
        header = directory / "cuda_runtime_api.h"
        try:
            text = header.read_text(errors="replace")
        except OSError:
            continue
        match = re.search(r"#define\s+CUDART_VERSION\s+(\d+)", text)
        if match:
            number = int(match.group(1))
            return f"{number // 1000}.{(number % 1000) // 10}"
    return None


def nvcc_requirements(cuda_version: str) -> list[str]:
    """The pip requirements of an nvcc matching CUDA ``cuda_version`` ("13.2")."""
    major = cuda_version.split(".")[0]
    if int(major) >= 13:
        return [f"{name}=={cuda_version}.*" for name in NVCC_WHEELS]
    return [f"nvidia-cuda-nvcc-cu{major}=={cuda_version}.*"]


def find_cuda_toolkit(cuda_major: str | None) -> tuple[CudaToolkit | None, str]:
    """The first nvcc whose CUDA major version is ``cuda_major`` (any if None) and
    whose version matches the CUDA runtime headers it compiles against."""
    candidates = _nvcc_candidates()
    if not candidates:
        return None, (
            "nvcc not found (looked in $CUDA_HOME, $CUDA_PATH, PATH and the nvidia-cuda-nvcc "
            "wheel under site-packages/nvidia); `pip install nvidia-cuda-nvcc` provides one"
        )
    rejected: list[str] = []
    for nvcc, from_wheel in candidates:
        version = _nvcc_version(nvcc)
        if version is None:
            rejected.append(f"{nvcc} (version unknown)")
            continue
        if cuda_major is not None and version.split(".")[0] != cuda_major:
            rejected.append(f"{nvcc} (CUDA {version})")
            continue
        toolkit = CudaToolkit(nvcc=nvcc, version=version, from_wheel=from_wheel)
        _cuda_runtime_dirs(toolkit)
        headers = _cudart_header_version(toolkit)
        if headers is not None and headers != version:
            rejected.append(
                f"{nvcc} (nvcc {version}, but the CUDA runtime headers are {headers}: "
                f"pip install {' '.join(repr(r) for r in nvcc_requirements(headers))})"
            )
            continue
        return toolkit, ""
    wanted = f" for CUDA {cuda_major}.x, which torch was built with" if cuda_major else ""
    return None, f"no usable nvcc{wanted}; found " + "; ".join(rejected)


def parse_cuda_arch(spec: str) -> tuple[list[str], list[str]]:
    """``"8.0;9.0+PTX"`` -> (nvcc -gencode flags, names like ``sm_80``/``compute_90``)."""
    flags: list[str] = []
    names: list[str] = []
    for item in re.split(r"[;,\s]+", spec.strip()):
        if not item:
            continue
        ptx = item.upper().endswith("+PTX")
        core = item[: -len("+PTX")] if ptx else item
        core = core.lower().removeprefix("sm_").removeprefix("compute_")
        match = re.fullmatch(r"(\d+)\.(\d+)([af]?)|(\d+?)(\d)([af]?)", core)
        if not match:
            raise UsageError(
                f"bad CUDA architecture {item!r} in DAU_CUDA_ARCH={spec!r}; "
                "write e.g. '8.0;9.0+PTX' or 'sm_80;sm_90'"
            )
        major, minor, suffix = (
            match.group(1, 2, 3) if match.group(1) else match.group(4, 5, 6)
        )
        number = f"{major}{minor}{suffix}"
        codes = [f"sm_{number}"] + ([f"compute_{number}"] if ptx else [])
        flags.append(f"-gencode=arch=compute_{number},code=[{','.join(codes)}]")
        names += codes
    if not flags:
        raise UsageError(f"DAU_CUDA_ARCH={spec!r} names no architecture")
    return flags, names


# ----------------------------------------------------------------- build ----


def _common_defines() -> list[str]:
    return [
        # Non-stable torch headers refuse to compile with this defined.
        "-DTORCH_STABLE_ONLY",
        # Compile against the 2.10 stable ABI so newer torch versions load us.
        f"-DTORCH_TARGET_VERSION={TARGET_VERSION_MACRO}",
    ]


def _cxx_flags(include_dirs: Sequence[str]) -> list[str]:
    flags = [
        f"-std={CXX_STD}",
        "-O3",
        "-fPIC",
        "-fvisibility=hidden",
        # sqrt and friends without errno, so loops calling them vectorize.
        "-fno-math-errno",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter",
        *_common_defines(),
    ]
    flags += [f"-I{d}" for d in include_dirs]
    return flags


def _nvcc_flags(
    include_dirs: Sequence[str], toolkit: CudaToolkit, gencode: Sequence[str], cxx: str
) -> list[str]:
    flags = [
        f"-std={CXX_STD}",
        "-O3",
        "--expt-relaxed-constexpr",
        "-Xcompiler=-fPIC,-fvisibility=hidden",
        "-DUSE_CUDA",
        *_common_defines(),
        *gencode,
    ]
    if shutil.which(cxx):
        flags.append(f"-ccbin={shutil.which(cxx)}")
    flags += [f"-I{d}" for d in include_dirs]
    flags += [f"-I{d}" for d in toolkit.include_dirs]
    return flags


def _sources() -> tuple[list[Path], list[Path]]:
    cpp = [CSRC / "registration.cpp", *sorted((CSRC / "cpu").glob("*.cpp"))]
    cu = sorted((CSRC / "cuda").glob("*.cu"))
    return cpp, cu


def _headers() -> list[Path]:
    """The headers under csrc/ that the sources include: part of the inputs digest."""
    return sorted(p for pattern in ("*.h", "*.cuh") for p in CSRC.rglob(pattern))


def _inputs_digest(parts: Sequence[str], files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    for path in files:
        digest.update(str(path.relative_to(CSRC)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _compile_all(jobs: Sequence[list[str]], verbose: bool) -> None:
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_run, cmd, verbose) for cmd in jobs]
        errors = [f.exception() for f in futures]
    failures = [e for e in errors if e is not None]
    if failures:
        raise BuildError("\n\n".join(str(e) for e in failures))


def print_nvcc_requirements() -> int:
    """Print the pip requirements of an nvcc matching the installed CUDA runtime."""
    torch = _import_torch()
    version = None
    for include in _nvidia_dirs("cu13/include", "cuda_runtime/include"):
        probe = CudaToolkit(nvcc=include / "none", version="", from_wheel=True)
        probe.include_dirs = [include]
        version = version or _cudart_header_version(probe)
    version = version or torch.version.cuda
    if not version:
        raise UsageError(f"torch {torch.__version__} is not a CUDA build; no nvcc is needed")
    print(" ".join(nvcc_requirements(version)))
    return 0


def check_cuda_compile(verbose: bool) -> int:
    """Compile every .cu file to an object file; no GPU needed."""
    torch = _import_torch()
    _, cu_sources = _sources()
    if not cu_sources:
        _log("no CUDA sources under csrc/cuda; nothing to check")
        return 0
    torch_cuda = torch.version.cuda
    toolkit, why = find_cuda_toolkit(torch_cuda.split(".")[0] if torch_cuda else None)
    if toolkit is None and torch_cuda:
        toolkit, why = find_cuda_toolkit(None)
    if toolkit is None:
        raise UsageError(f"cannot check the CUDA kernels: {why}")
    gencode, arch_names = parse_cuda_arch(os.environ.get("DAU_CUDA_ARCH", DEFAULT_CUDA_ARCH))
    cxx = os.environ.get("CXX", "c++")
    flags = _nvcc_flags(torch.utils.cpp_extension.include_paths(), toolkit, gencode, cxx)
    with tempfile.TemporaryDirectory(prefix="dau-cuda-check-") as tmp:
        jobs = [
            [str(toolkit.nvcc), *flags, "-c", str(src), "-o", str(Path(tmp) / f"{src.stem}.o")]
            for src in cu_sources
        ]
        _compile_all(jobs, verbose)
    names = ", ".join(str(s.relative_to(CSRC.parent)) for s in cu_sources)
    _log(
        f"CUDA compile check passed: {names} for {', '.join(arch_names)} "
        f"with nvcc {toolkit.version} ({toolkit.nvcc})"
    )
    return 0


def build(out_dir: Path, cuda_mode: str, force: bool, verbose: bool) -> int:
    torch = _import_torch()
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        raise UsageError(f"C++ compiler {cxx!r} not found; install g++ or set $CXX")
    include_dirs = torch.utils.cpp_extension.include_paths()
    library_dirs = torch.utils.cpp_extension.library_paths()
    cpp_sources, cu_sources = _sources()

    # Decide about CUDA.
    toolkit: CudaToolkit | None = None
    cuda_reason: str | None = None
    torch_cuda = torch.version.cuda
    if cuda_mode == "0":
        cuda_reason = "disabled (DAU_CUDA=0 / --cuda 0)"
    elif not torch_cuda:
        cuda_reason = f"torch {torch.__version__} is not a CUDA build"
    elif not cu_sources:
        cuda_reason = "no CUDA sources under csrc/cuda"
    else:
        toolkit, why = find_cuda_toolkit(torch_cuda.split(".")[0])
        if toolkit is not None and toolkit.cudart is None:
            why = f"libcudart for CUDA {toolkit.version} not found next to {toolkit.nvcc}"
            toolkit = None
        if toolkit is None:
            cuda_reason = why
    if cuda_mode == "1" and toolkit is None:
        raise UsageError(f"CUDA kernels requested (DAU_CUDA=1 / --cuda 1) but: {cuda_reason}")

    gencode: list[str] = []
    arch_names: list[str] = []
    if toolkit is not None:
        gencode, arch_names = parse_cuda_arch(
            os.environ.get("DAU_CUDA_ARCH", DEFAULT_CUDA_ARCH)
        )

    cxx_flags = _cxx_flags(include_dirs)
    ldflags = [
        "-shared",
        "-Wl,--no-undefined",
        "-Wl,--as-needed",
        *[f"-L{d}" for d in library_dirs],
        "-ltorch_cpu",
    ]
    nvcc_flags: list[str] = []
    if toolkit is not None:
        nvcc_flags = _nvcc_flags(include_dirs, toolkit, gencode, cxx)
        ldflags += ["-ltorch_cuda", f"-L{toolkit.library_dir}", f"-l:{toolkit.cudart}"]

    used_sources = cpp_sources + (cu_sources if toolkit is not None else [])
    cxx_version = _first_line([cxx, "--version"])
    digest = _inputs_digest(
        [torch.__version__, cxx, cxx_version, *cxx_flags, *nvcc_flags, *ldflags],
        [*used_sources, *_headers()],
    )
    library = out_dir / LIBRARY_NAME
    info_path = out_dir / BUILD_INFO_NAME
    if not force and library.exists() and info_path.exists():
        try:
            old = json.loads(info_path.read_text())
        except (OSError, ValueError):
            old = {}
        if old.get("inputs_sha256") == digest:
            _log(f"up to date: {library} (use --force to rebuild)")
            return 0

    with tempfile.TemporaryDirectory(prefix="dau-ops-build-") as tmp_name:
        tmp = Path(tmp_name)
        jobs: list[list[str]] = []
        objects: list[Path] = []
        for src in cpp_sources:
            obj = tmp / f"{src.parent.name}_{src.stem}.o"
            jobs.append([cxx, *cxx_flags, "-c", str(src), "-o", str(obj)])
            objects.append(obj)
        if toolkit is not None:
            for src in cu_sources:
                obj = tmp / f"cuda_{src.stem}.o"
                jobs.append([str(toolkit.nvcc), *nvcc_flags, "-c", str(src), "-o", str(obj)])
                objects.append(obj)
        _compile_all(jobs, verbose)
        linked = tmp / LIBRARY_NAME
        _run([cxx, *[str(o) for o in objects], "-o", str(linked), *ldflags], verbose)
        _write_atomic(library, linked.read_bytes())
        os.chmod(library, 0o755)

    for src in cpp_sources:
        _log(f"built C++: {src.relative_to(CSRC.parent)}")
    if toolkit is not None:
        for src in cu_sources:
            _log(
                f"built CUDA: {src.relative_to(CSRC.parent)} for {', '.join(arch_names)} "
                f"(nvcc {toolkit.version})"
            )
    else:
        _log(f"skipped CUDA kernels: {cuda_reason}")
    _log(f"wrote {library}")

    info = {
        "library": LIBRARY_NAME,
        "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "torch_cuda_version": torch_cuda,
        "stable_abi_target": f"{TARGET_TORCH[0]}.{TARGET_TORCH[1]}",
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "compiler": {"cxx": shutil.which(cxx) or cxx, "version": cxx_version},
        "cxx_flags": cxx_flags,
        "ldflags": ldflags,
        "sources": [str(s.relative_to(CSRC.parent)) for s in used_sources],
        "backends": ["CPU"] + (["CUDA"] if toolkit is not None else []),
        "cuda": {
            "built": toolkit is not None,
            "reason": cuda_reason,
            "archs": arch_names,
            "nvcc": str(toolkit.nvcc) if toolkit else None,
            "nvcc_version": toolkit.version if toolkit else None,
            "nvcc_flags": nvcc_flags,
            "cudart": str(toolkit.library_dir / toolkit.cudart)
            if toolkit and toolkit.library_dir and toolkit.cudart
            else None,
        },
        "inputs_sha256": digest,
    }
    _write_atomic(info_path, (json.dumps(info, indent=2) + "\n").encode())
    _log(f"wrote {info_path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="build_ops.py",
        description="Build dau's torch operator library (libdau_ops.so).",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=CSRC.parent / "python" / "dau",
        help="folder that receives libdau_ops.so and _ops_build.json (default: python/dau)",
    )
    parser.add_argument(
        "--cuda",
        choices=["auto", "0", "1"],
        default=os.environ.get("DAU_CUDA", "auto"),
        help="build the CUDA kernels: auto (torch is a CUDA build and nvcc is found), "
        "0 (never) or 1 (always, else fail); default $DAU_CUDA or auto",
    )
    parser.add_argument(
        "--check-cuda-compile-only",
        action="store_true",
        help="only compile csrc/cuda/*.cu to object files in a temporary folder (CI check)",
    )
    parser.add_argument(
        "--nvcc-requirements",
        action="store_true",
        help="print the pip requirements of the nvcc that matches torch's CUDA runtime "
        "(e.g. for `pip install $(python csrc/build_ops.py --nvcc-requirements)`) and exit",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every command")
    args = parser.parse_args(argv)
    if args.cuda not in ("auto", "0", "1"):
        parser.error(f"DAU_CUDA must be auto, 0 or 1, got {args.cuda!r}")
    try:
        if args.nvcc_requirements:
            return print_nvcc_requirements()
        if args.check_cuda_compile_only:
            return check_cuda_compile(args.verbose)
        return build(args.out_dir.resolve(), args.cuda, args.force, args.verbose)
    except UsageError as exc:
        print(f"build_ops.py: error: {exc}", file=sys.stderr)
        return 2
    except BuildError as exc:
        print(f"build_ops.py: build failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
