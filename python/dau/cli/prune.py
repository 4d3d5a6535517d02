"""``dau prune``: a sparse model by one-shot magnitude pruning with rewinding."""

from __future__ import annotations

from typing import Any

import click

from dau.cli.options import emit_json, kernels_option, output_options

__all__ = ["prune"]


@click.command()
@click.option("--model", type=click.Path(file_okay=False, exists=True), required=True,
              help="The trained run to prune (an original model or a retrain reference).")
@click.option("--ratio", type=float, default=0.95, show_default=True,
              help="Fraction of all conv weights to prune (global L1 magnitude).")
@click.option("--epochs", type=int, default=None,
              help="Retraining epochs (default: those of the pruned run).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@kernels_option("Masked-update kernels (default: those of the pruned run).", default=None)
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True)
@click.option("-o", "--out", type=click.Path(file_okay=False), default=None,
              help="Run directory to create (default: a new one under --runs-dir).")
@output_options
def prune(**opts: Any) -> None:
    """Prune a trained model (OMP), rewind it and retrain it with the mask."""
    from dau.cli import configure_logging
    from dau.pruning.run import prune as run_pruning

    configure_logging(bool(opts["quiet"]), int(opts["verbose"]))
    run = run_pruning(opts["model"], opts["ratio"], epochs=opts["epochs"], device=opts["device"],
                      kernels=opts["kernels"],
                      runs_dir=opts["runs_dir"], out=opts["out"], progress=not opts["quiet"])
    metrics = run.metrics()
    if opts["as_json"]:
        emit_json({"run": str(run.path), **run.manifest.get("pruning", {}), **metrics})
    else:
        click.echo(f"run: {run.path}", err=True)
