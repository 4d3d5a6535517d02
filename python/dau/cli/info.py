"""``dau info``: versions and the compiled kernels."""

from __future__ import annotations

import click

from dau.cli.options import emit_json

__all__ = ["info"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON on stdout.")
def info(as_json: bool) -> None:
    """Print the versions of dau, torch, CUDA, the Rust module and the op library."""
    import torch

    from dau.checkpoint import versions

    data = versions()
    data["cuda_available"] = torch.cuda.is_available()
    data["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if as_json:
        emit_json(data)
        return
    ops = data.pop("ops")
    for key, value in data.items():
        click.echo(f"{key:>15}: {value}")
    if isinstance(ops, dict):
        for key, value in ops.items():
            click.echo(f"{'ops.' + key:>15}: {value}")
    else:
        click.echo(f"{'ops':>15}: {ops}")
