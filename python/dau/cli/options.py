"""Shared click options, config-file loading and output helpers of the ``dau`` commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from dau.config import KERNELS, check_keys, load_toml

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "FORGET_HELP",
    "common_options",
    "config_option",
    "emit_json",
    "kernels_option",
    "output_options",
    "request_options",
    "training_options",
]

#: The --forget help shared by every command that takes a forget set.
FORGET_HELP = ("Forget set: random:N, random:P%, class:K, classes:K1,K2, indices:FILE, or a "
               "deletion request by content: fingerprints:FILE, files:DIR|LIST, ids:FILE "
               "(with --metadata and --id-column).")


def _apply(options: list[Callable[[F], F]], func: F) -> F:
    for option in reversed(options):
        func = option(func)
    return func


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Eager callback of -c/--config: the file fills this command's defaults."""
    if value is None:
        return None
    data = load_toml(value)
    command = ctx.command.name or ""
    tables = {k for k, v in data.items() if isinstance(v, dict)}
    merged = {k: v for k, v in data.items() if k not in tables}
    merged.update(data.get(command, {}))
    names = [p.name for p in ctx.command.params if p.name and p.name != "config"]
    check_keys(merged, names, where=f"-c/--config {value} (command {command})")
    ctx.default_map = {**(ctx.default_map or {}), **merged}
    return value


def kernels_option(help: str, default: str | None = "fused") -> Callable[[F], F]:
    """``--kernels``: dau's compiled ops or their pure-PyTorch versions."""
    return click.option("--kernels", type=click.Choice(KERNELS), default=default,
                        show_default=default is not None, help=help)


def config_option(func: F) -> F:
    return click.option(
        "-c", "--config", type=click.Path(dir_okay=False), is_eager=True, expose_value=False,
        callback=_load_config,
        help="TOML file whose keys fill this command's defaults (top-level keys and a "
        "[<command>] table); flags given here override it.",
    )(func)


def output_options(func: F) -> F:
    return _apply(
        [
            click.option("--json", "as_json", is_flag=True,
                         help="Print the result as JSON on stdout (human text stays on stderr)."),
            click.option("-q", "--quiet", is_flag=True, help="No progress bars, warnings only."),
            click.option("-v", "--verbose", count=True, help="More log output (-vv for debug)."),
        ],
        func,
    )


def common_options(func: F) -> F:
    """Options of every command that evaluates a model."""
    return _apply(
        [
            click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                         help="Root holding the dataset files (default: $DAU_DATA, then "
                         "/usr/share/datasets/<name>/, then a download where possible)."),
            click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True,
                         help="Batch size."),
            click.option("--device", default="auto", show_default=True,
                         help="auto, cpu, cuda or cuda:N."),
            config_option,
            *[output_options],
        ],
        func,
    )


def training_options(func: F) -> F:
    """Options of every command that trains."""
    return _apply(
        [
            click.option("--dataset", default="digits", show_default=True,
                         help="cifar10, cifar100, svhn, fashion-mnist, mnist, digits, "
                         "synthetic[:key=value,...], or streamed from disk: imagefolder:ROOT"
                         "[,size=64,...] or filelist:LIST.csv[,test_path=...]."),
            click.option("--runs-dir", type=click.Path(file_okay=False), default="runs",
                         show_default=True, help="Where run directories are created."),
            click.option("--arch", default="resnet18", show_default=True,
                         help="Architecture: resnet18, resnet50 or vgg16_bn."),
            click.option("--width", type=float, default=1.0, show_default=True,
                         help="Width multiplier of every layer (e.g. 0.25 for CPU-sized runs)."),
            click.option("--epochs", type=int, default=182, show_default=True,
                         help="Training epochs."),
            click.option("--lr", type=float, default=0.1, show_default=True,
                         help="Initial learning rate."),
            click.option("--seed", type=int, default=1, show_default=True,
                         help="Seed of the split, the initialisation and the batch order."),
        ],
        func,
    )


def request_options(func: F) -> F:
    """Options of a forget request given as external IDs (``--forget ids:FILE``)."""
    return _apply(
        [
            click.option("--metadata", type=click.Path(dir_okay=False, exists=True), default=None,
                         help="CSV table mapping external IDs to samples (a 'fingerprint' or "
                         "'index' column), for --forget ids:FILE."),
            click.option("--id-column", default=None,
                         help="Column of --metadata holding the IDs of --forget ids:FILE."),
        ],
        func,
    )


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
