"""``dau import``: a model trained elsewhere as an original run that dau can unlearn and judge."""

from __future__ import annotations

from typing import Any

import click

from dau.cli.options import emit_json, output_options

__all__ = ["import_"]

_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _normalization(value: str, info: Any) -> tuple[Any, Any]:
    """``--normalize``: none, dataset, imagenet, or MEAN,.../STD,... → (mean, std)."""
    if value == "none":
        return None, None
    if value == "dataset":
        return info.mean, info.std
    if value == "imagenet":
        return _IMAGENET
    mean, sep, std = value.partition("/")
    try:
        if not sep:
            raise ValueError(value)
        return tuple(float(v) for v in mean.split(",")), tuple(float(v) for v in std.split(","))
    except ValueError:
        raise click.BadParameter(f"expected none, dataset, imagenet or MEAN,.../STD,...; got "
                                 f"{value!r}", param_hint="--normalize") from None


@click.command("import")
@click.argument("weights", type=click.Path(dir_okay=False, exists=True))
@click.option("--arch", required=True,
              help="torchvision:NAME, timm:NAME, import:MODULE:CALLABLE (called with "
              "num_classes=N) or a dau architecture (resnet18, ...).")
@click.option("--dataset", required=True,
              help="The data the model was trained on: imagefolder:ROOT, filelist:LIST.csv, "
              "fashion-mnist, ... (its classes must be the model's).")
@click.option("--num-classes", type=click.IntRange(min=2), default=None,
              help="Check that the data has this many classes.")
@click.option("--feature-layer", default=None,
              help="Module whose output are the penultimate features (default: the input of "
              "the layer that produces the logits).")
@click.option("--normalize", default="none", show_default=True,
              help="Normalisation added inside the model: none (the model or the data's "
              "transform does it), dataset, imagenet, or MEAN,.../STD,...")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed of the validation split that unlearning and eval will use.")
@click.option("--val-fraction", type=float, default=0.1, show_default=True,
              help="Fraction of each class held out for validation.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Root holding the dataset files of a named dataset.")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Where the run directory is created.")
@click.option("-o", "--out", type=click.Path(file_okay=False), default=None,
              help="The run directory to create (new or empty).")
@output_options
def import_(weights: str, **opts: Any) -> None:
    """Import WEIGHTS (safetensors, or a state dict saved with torch.save) as a complete
    original run: the architecture is built for the data's classes, the weights load
    strictly (mismatched keys and shapes are named), a forward pass on the data checks the
    model, and the train/validation split is planned. `dau unlearn --model RUN` and
    `dau eval RUN` then work on it."""
    from dau.api import import_model
    from dau.cli import configure_logging
    from dau.data import load_dataset
    from dau.errors import ConfigError

    configure_logging(bool(opts["quiet"]), int(opts["verbose"]))
    dataset = load_dataset(opts["dataset"], opts["data_dir"])
    if opts["num_classes"] is not None and opts["num_classes"] != dataset.info.num_classes:
        raise ConfigError(f"--num-classes {opts['num_classes']}: the dataset {opts['dataset']!r} "
                          f"has {dataset.info.num_classes} classes")
    mean, std = _normalization(opts["normalize"], dataset.info)
    run = import_model(weights, dataset, arch=opts["arch"], out=opts["out"],
                       runs_dir=opts["runs_dir"], seed=opts["seed"],
                       val_fraction=opts["val_fraction"], feature_layer=opts["feature_layer"],
                       mean=mean, std=std, data_dir=opts["data_dir"])
    click.echo(f"imported {opts['arch']} -> {run.path}", err=True)
    if opts["as_json"]:
        emit_json({"run": str(run.path), "model": run.manifest["model"],
                   "split": run.manifest["split"]["fingerprint"]})
