"""``dau export``: a run's classifier as a self-contained TorchScript file."""

from __future__ import annotations

import click

from dau.cli.options import emit_json

__all__ = ["export"]


@click.command()
@click.argument("run", type=click.Path(file_okay=False, exists=True))
@click.option("--format", "fmt", type=click.Choice(["torchscript"]), default="torchscript",
              show_default=True, help="Export format.")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="File to write (default: RUN/model.torchscript.pt).")
@click.option("--force", is_flag=True, help="Replace an existing file.")
@click.option("--json", "as_json", is_flag=True, help="Print the written path as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Warnings only.")
def export(run: str, fmt: str, out: str | None, force: bool, as_json: bool, quiet: bool) -> None:
    """Write RUN's classifier as TorchScript: forward(x) maps float images in [0, 1]
    ([N, C, H, W]) to logits [N, classes]; normalisation is inside, features are not
    returned, masks of a pruned run are folded. Load it with torch.jit.load alone."""
    from dau.cli import configure_logging
    from dau.export import export_torchscript

    configure_logging(quiet, 0)
    path = export_torchscript(run, out, force=force)
    if as_json:
        emit_json({"run": run, "format": fmt, "file": str(path)})
    else:
        click.echo(f"wrote {path}", err=True)
