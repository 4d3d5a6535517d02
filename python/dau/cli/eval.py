"""``dau eval``: the metrics of one or more runs, with gaps to a reference run."""

from __future__ import annotations

from typing import Any

import click

from dau.cli.options import common_options, emit_json

__all__ = ["eval_"]


@click.command("eval")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--reference", type=click.Path(file_okay=False, exists=True), default=None,
              help="Run to compare against (normally the retrain-from-scratch reference); "
              "it must share the runs' split.")
@click.option("--forget", default=None,
              help="Judge an original model on this forget set (random:N, class:K, ...).")
@click.option("--class", "klass", type=int, default=None, help="Short for --forget class:K.")
@common_options
@click.option("--no-mia", is_flag=True, help="Skip the membership-inference attacks.")
@click.option("--max-mia-samples", type=click.IntRange(min=0), default=10_000,
              show_default=True,
              help="Fit each MIA attack on at most this many rows per side (a seeded subset, "
              "stratified by label); 0 fits on all rows, as the reference does.")
@click.option("--keep-forgotten-classes", is_flag=True,
              help="Keep the forgotten classes in the test set (class-wise forgetting drops them).")
@click.option("--reference-compat", is_flag=True,
              help="Use the reference code's (incorrect) modified-entropy MIA feature.")
@click.option("--plot", is_flag=True,
              help="Also draw each run's membership-score distributions (RUN/plots/membership) "
              "and, with --reference, the runs' gaps to it (REFERENCE/plots/gaps).")
@click.option("--format", "formats", type=click.Choice(["png", "svg"]), multiple=True,
              default=("png",), show_default=True, help="--plot: file format (repeatable).")
def eval_(runs: tuple[str, ...], **opts: Any) -> None:
    """Evaluate RUNS: UA, RA, TA, VA, MIA-efficacy, training privacy, RTE and gaps.

    The table goes to stderr; --json prints every number on stdout.
    """
    from dau.checkpoint import load_run
    from dau.cli import configure_logging
    from dau.data.splits import parse_forget_option
    from dau.eval.report import format_table, gap
    from dau.eval.runs import evaluate_run

    configure_logging(bool(opts["quiet"]), int(opts["verbose"]))
    spec = parse_forget_option(opts["forget"], opts["klass"])
    forget = None if spec == "none" else spec
    reference = load_run(opts["reference"]) if opts["reference"] else None
    kwargs = dict(
        device=opts["device"], batch_size=opts["batch_size"], mia=not opts["no_mia"],
        reference_compat=opts["reference_compat"], max_mia_samples=opts["max_mia_samples"] or None,
        data_dir=opts["data_dir"], progress=not opts["quiet"],
        drop_forgotten_classes=not opts["keep_forgotten_classes"], scores=opts["plot"],
    )
    results = [
        evaluate_run(load_run(path), reference=reference, forget=forget, **kwargs)
        for path in runs
    ]
    ref_result = evaluate_run(reference, **kwargs) if reference is not None else None
    if ref_result is not None:
        for result in results:
            result["gap"] = gap(result, ref_result)
    rows = [(r["name"], r) for r in results]
    if ref_result is not None:
        rows.append((ref_result["name"], ref_result))
    click.echo(format_table(rows, reference=ref_result["name"] if ref_result else None), err=True)
    if opts["plot"]:
        _plot(results, ref_result, opts["formats"])
    if opts["as_json"]:
        emit_json({"runs": results, "reference": ref_result})


def _plot(results: list[dict[str, Any]], reference: dict[str, Any] | None,
          formats: tuple[str, ...]) -> None:
    """The membership-score plots of each run (and the reference), and the gaps plot."""
    from dau.plots import plot_gaps, plot_membership

    written = []
    for result in [*results, *([reference] if reference else [])]:
        written += plot_membership(result["run"], result.pop("scores"), formats)
    if reference is not None:
        written += plot_gaps(results, reference, reference["run"], formats)
    for path in written:
        click.echo(f"plot: {path}", err=True)
