"""``dau plot``: draw what runs recorded (:mod:`dau.plots`)."""

from __future__ import annotations

import click

__all__ = ["plot"]


@click.command("plot")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--format", "formats", type=click.Choice(["png", "svg"]), multiple=True,
              default=("png",), show_default=True, help="File format (repeatable).")
def plot(runs: tuple[str, ...], formats: tuple[str, ...]) -> None:
    """Draw each RUN's log over its steps into RUN/plots/steps.png: an unlearning run's losses,
    the attacker's accuracy on forget vs validation batches, the defender's accuracy on its
    forget, validation and retain batches and the learning rate; a training run's loss,
    accuracies and learning rate by epoch. `dau eval --plot` draws the membership scores and
    the gaps to a reference."""
    from dau.plots import plot_steps

    for run in runs:
        for path in plot_steps(run, formats):
            click.echo(f"plot: {path}", err=True)
