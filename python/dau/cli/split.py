"""``dau split plan|show|verify``: auditable split files."""

from __future__ import annotations

from typing import Any

import click

from dau.cli.options import FORGET_HELP, emit_json, output_options, request_options

__all__ = ["split"]

_SETS = ("val", "train", "forget", "retain")


@click.group()
def split() -> None:
    """Plan a split into a file, show it, and check a dataset against it."""


def _summary(plan: Any, doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "spec": plan.spec, "seed": plan.seed, "val_fraction": plan.val_fraction,
        "algorithm_version": doc.get("algorithm_version"), "fingerprint": plan.fingerprint,
        "num_samples": plan.num_samples, "num_classes": plan.num_classes,
        "counts": plan.counts(),
        "class_counts": {s: plan.class_counts(s).tolist() for s in _SETS},
    }
    dataset = doc.get("dataset")
    if dataset is not None:
        out["dataset"] = {k: v for k, v in dataset.items() if k != "forget_fingerprints"}
    request = doc.get("request")
    if request is not None:
        out["request"] = {**{k: v for k, v in request.items() if k != "resolution"},
                          "not_forgotten": [r for r in request.get("resolution", [])
                                            if r.get("status") != "forgotten"]}
    return out


def _show(summary: dict[str, Any], path: str) -> None:
    echo = click.echo
    echo(f"{path}: forget {summary['spec']} (seed {summary['seed']}, val_fraction "
         f"{summary['val_fraction']}, algorithm v{summary['algorithm_version']})")
    echo(f"split fingerprint  {summary['fingerprint']}")
    dataset = summary.get("dataset")
    if dataset:
        echo(f"dataset            {dataset['name']}: {dataset['num_train']} train / "
             f"{dataset['num_test']} test samples, {dataset['fingerprint_algorithm']}")
        echo(f"train digest       {dataset['train_digest']}")
        echo(f"forget digest      {dataset['set_digests']['forget']}")
    counts = summary["class_counts"]
    echo("")
    echo(f"{'class':>6} " + " ".join(f"{s:>8}" for s in _SETS))
    for k in range(summary["num_classes"]):
        echo(f"{k:>6} " + " ".join(f"{counts[s][k]:>8}" for s in _SETS))
    echo(f"{'total':>6} " + " ".join(f"{summary['counts'][s]:>8}" for s in _SETS))
    request = summary.get("request")
    if request:
        s = request["summary"]
        echo("")
        echo(f"request {request['spec']} ({request['items']} items, sha256 "
             f"{str(request.get('source_sha256', '-'))[:16]}): {s['forgotten']} forgotten "
             f"({s['samples_forgotten']} samples), {s['validation']} in validation and "
             f"{s['test']} in test (never trained on), {s['absent']} not in the dataset, "
             f"{s['unresolved']} unresolved")
        for item in request["not_forgotten"]:
            where = f" line {item['line']}" if "line" in item else ""
            detail = item.get("reason") or ", ".join(
                f"{k} {item[k]}" for k in ("val", "test") if k in item) or "no match"
            echo(f"  {item['status']:<10} {item['item']}{where}: {detail}")


@split.command("plan")
@click.option("--dataset", required=True, help="Dataset name (cifar10, fashion-mnist, ...).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Root holding the dataset files.")
@click.option("--forget", default=None, help=FORGET_HELP)
@click.option("--class", "klass", type=int, default=None, help="Short for --forget class:K.")
@request_options
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the split.")
@click.option("--val-fraction", type=float, default=0.1, show_default=True,
              help="Fraction of each class held out as the validation set.")
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True,
              help="Split file to write (JSON).")
@output_options
def plan_cmd(**opts: Any) -> None:
    """Plan a split of a dataset and write it, with the dataset's content digests."""
    from dau.cli import configure_logging
    from dau.data import load_dataset
    from dau.data.requests import plan_forget
    from dau.data.splits import dataset_section, load_split, parse_forget_option, save_split
    from dau.errors import ConfigError

    configure_logging(bool(opts["quiet"]), int(opts["verbose"]))
    if opts["seed"] < 0:
        raise ConfigError(f"--seed: expected a non-negative integer, got {opts['seed']}")
    forget = parse_forget_option(opts["forget"], opts["klass"])
    dataset = load_dataset(opts["dataset"], opts["data_dir"])
    plan, request = plan_forget(dataset, forget, opts["seed"], opts["val_fraction"],
                                metadata=opts["metadata"], id_column=opts["id_column"])
    save_split(opts["out"], plan, dataset=dataset_section(opts["dataset"], dataset, plan),
               request=request)
    summary = _summary(*load_split(opts["out"]))
    if opts["as_json"]:
        emit_json({"file": opts["out"], **summary})
    else:
        click.echo(f"wrote {opts['out']}: forget {plan.spec}, {summary['counts']}, "
                   f"fingerprint {plan.fingerprint[:16]}", err=True)


@split.command("show")
@click.argument("path", type=click.Path(dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def show_cmd(path: str, as_json: bool) -> None:
    """Counts per set and per class, fingerprints and the request of a split file."""
    from dau.data.splits import load_split

    summary = _summary(*load_split(path))
    if as_json:
        emit_json(summary)
    else:
        _show(summary, path)


@split.command("verify")
@click.argument("path", type=click.Path(dir_okay=False, exists=True))
@click.option("--dataset", default=None,
              help="Dataset to check (default: the one named in the split file).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Root holding the dataset files.")
@output_options
def verify_cmd(path: str, **opts: Any) -> None:
    """Check that a dataset still matches a split file; exit 1 listing every difference."""
    from dau.cli import configure_logging
    from dau.data import load_dataset
    from dau.data.splits import load_split, verify_split
    from dau.errors import ConfigError, SplitMismatchError

    configure_logging(bool(opts["quiet"]), int(opts["verbose"]))
    plan, doc = load_split(path)
    name = opts["dataset"] or doc.get("dataset", {}).get("name")
    if not name:
        raise ConfigError(f"--dataset: {path} names no dataset; say which one to check")
    diffs, notes = verify_split(plan, doc, load_dataset(name, opts["data_dir"]))
    if opts["as_json"]:
        emit_json({"file": path, "dataset": name, "match": not diffs, "differences": diffs,
                   "notes": notes})
    for note in notes:
        click.echo(f"note: {note}", err=True)
    for diff in diffs:
        click.echo(f"differs: {diff}", err=True)
    if diffs:
        raise SplitMismatchError(f"{path}: dataset {name} does not match the split "
                                 f"({len(diffs)} difference(s) listed above)")
    click.echo(f"{path}: dataset {name} matches (split {plan.fingerprint[:16]}, "
               f"forget {plan.spec})", err=True)
