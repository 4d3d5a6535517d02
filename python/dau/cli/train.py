"""``dau train``: the original model, or the retrain-from-scratch reference."""

from __future__ import annotations

from typing import Any

import click

from dau.cli.options import (
    FORGET_HELP,
    common_options,
    emit_json,
    kernels_option,
    request_options,
    training_options,
)

__all__ = ["train"]


@click.command()
@training_options
@common_options
@click.option("--forget", default=None,
              help=FORGET_HELP + " With --exclude-forget: the data the reference never sees.")
@request_options
@click.option("--class", "klass", type=int, default=None, help="Short for --forget class:K.")
@click.option("--exclude-forget", is_flag=True,
              help="Train the retrain-from-scratch reference on the retain set only.")
@click.option("--val-fraction", type=float, default=0.1, show_default=True,
              help="Fraction of each class held out as the validation set.")
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option("--weight-decay", type=float, default=5e-4, show_default=True)
@click.option("--schedule", type=click.Choice(["multistep", "cosine", "constant"]),
              default="multistep", show_default=True,
              help="multistep: lr ÷10 at 50 % and 75 % of the epochs (the reference's 91/136 of 182).")
@click.option("--no-augment", is_flag=True, help="Train without random crop / flip.")
@click.option("--rewind-epoch", type=click.IntRange(min=0), default=8, show_default=True,
              help="Keep the weights after this epoch (0: the initial ones) for dau prune.")
@kernels_option("Optimizer kernels for masked (pruned) models.")
@click.option("-o", "--out", type=click.Path(file_okay=False), default=None,
              help="Run directory to create (default: a new one under --runs-dir).")
@click.option("--resume", type=click.Path(file_okay=False, exists=True), default=None,
              help="Continue an interrupted run directory to the same result.")
def train(**opts: Any) -> None:
    """Train a classifier and write a run directory (weights, manifest, metrics)."""
    from dau.cli import configure_logging
    from dau.config import TrainConfig
    from dau.data.splits import parse_forget_option
    from dau.training import train as run_training

    configure_logging(bool(opts["quiet"]), int(opts["verbose"]))
    forget = parse_forget_option(opts["forget"], opts["klass"])
    config = TrainConfig(
        dataset=str(opts["dataset"]),
        data_dir=opts["data_dir"],
        arch=str(opts["arch"]),
        width=float(opts["width"]),
        epochs=int(opts["epochs"]),
        batch_size=int(opts["batch_size"]),
        lr=float(opts["lr"]),
        momentum=float(opts["momentum"]),
        weight_decay=float(opts["weight_decay"]),
        schedule=str(opts["schedule"]),
        seed=int(opts["seed"]),
        val_fraction=float(opts["val_fraction"]),
        forget=forget,
        exclude_forget=bool(opts["exclude_forget"]),
        metadata=opts["metadata"],
        id_column=opts["id_column"],
        augment=not opts["no_augment"],
        device=str(opts["device"]),
        kernels=str(opts["kernels"]),
        rewind_epoch=int(opts["rewind_epoch"]),
    )
    run = run_training(config, runs_dir=str(opts["runs_dir"]), out=opts["out"],
                       resume=opts["resume"], progress=not opts["quiet"])
    metrics = run.metrics()
    if opts["as_json"]:
        emit_json({"run": str(run.path), "status": run.manifest["status"], **metrics})
    else:
        click.echo(f"run: {run.path}", err=True)
        if metrics:
            click.echo(
                f"train acc {metrics['train_acc']:.2f} %, test acc {metrics['test_acc']:.2f} %, "
                f"{metrics['seconds_per_epoch']:.1f} s/epoch", err=True,
            )
