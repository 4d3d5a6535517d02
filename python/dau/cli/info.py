"""``dau info``: versions and the compiled kernels."""

from __future__ import annotations

from typing import Any

import click

from dau.cli.options import emit_json

__all__ = ["info"]


def _kernels(ops: dict[str, Any]) -> str:
    cuda = ops.get("cuda") or {}
    if cuda.get("built"):
        archs = ", ".join(cuda.get("archs") or [])
        gpu = f"CUDA {archs} (nvcc {cuda.get('nvcc_version', '?')})"
    else:
        gpu = f"no CUDA kernels ({cuda.get('reason') or 'not built'})"
    return f"CPU; {gpu}"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON on stdout.")
def info(as_json: bool) -> None:
    """Print the versions of dau, torch, CUDA, the Rust module and the op library."""
    import torch

    from dau import allocator
    from dau.checkpoint import versions
    from dau.numerics import float32_settings

    data = versions()
    data["float32"] = {**float32_settings(), "dau_fd_passes": "ieee", "dau_jvp_passes": "global"}
    data["allocator"] = allocator.policy()
    data["cpu_threads"] = torch.get_num_threads()
    data["cuda_available"] = torch.cuda.is_available()
    data["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if as_json:
        emit_json(data)
        return
    devices = ", ".join(data["devices"]) or "no CUDA device visible"
    ops = data["ops"]
    lines = [
        ("dau", data["dau"]),
        ("torch", f"{data['torch']} (CUDA {data['cuda'] or 'none'}; {devices})"),
        ("python", f"{data['python']} on {data['platform']}"),
        ("rust module", data["native"]),
    ]
    if isinstance(ops, dict) and ops.get("available"):
        lines += [
            ("op library", f"{ops.get('library_path')} (built against torch "
                           f"{ops.get('torch_version')}, stable ABI >= {ops.get('stable_abi_target')})"),
            ("kernels", _kernels(ops)),
        ]
    else:
        lines.append(("op library", str(ops.get("error", ops) if isinstance(ops, dict) else ops)))
    f32 = data["float32"]
    lines.append(("float32", f"cuDNN convs {f32['cudnn_conv']}, CUDA matmuls {f32['cuda_matmul']}; "
                             "DAU --sensitivity fd runs its adversarial steps in IEEE float32 "
                             "(TF32 off), jvp under these settings"))
    lines.append(("allocator", data["allocator"]))
    lines.append(("cpu threads", f"{data['cpu_threads']} (dau --threads N, or OMP_NUM_THREADS)"))
    for key, value in lines:
        click.echo(f"{key:<12} {value}")
