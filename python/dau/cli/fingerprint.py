"""``dau fingerprint``: one content hash per sample of a dataset."""

from __future__ import annotations

from typing import Any

import click

from dau.cli.options import emit_json, output_options

__all__ = ["fingerprint"]


@click.command()
@click.option("--dataset", required=True, help="Dataset name (cifar10, fashion-mnist, ...).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Root holding the dataset files (default: $DAU_DATA, /usr/share/datasets).")
@click.option("--part", type=click.Choice(["train", "test"]), default="train", show_default=True,
              help="Which split of the dataset to fingerprint.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Hashing threads (default: all cores).")
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True,
              help="Fingerprint file to write (one per line, in position order).")
@output_options
def fingerprint(**opts: Any) -> None:
    """Write the fingerprint of every sample: BLAKE3 of its uint8 pixels (C, H, W order),
    first 128 bits, in hex. Lines of this file form a ``--forget fingerprints:FILE`` request."""
    import time

    import numpy as np

    from dau.cli import configure_logging
    from dau.data import load_dataset
    from dau.data.fingerprints import ALGORITHM, digest, part_fingerprints, write_fingerprint_file

    configure_logging(bool(opts["quiet"]), int(opts["verbose"]))
    dataset = load_dataset(opts["dataset"], opts["data_dir"])
    part = getattr(dataset, opts["part"])
    started = time.perf_counter()
    fps = part_fingerprints(part, opts["threads"])
    seconds = time.perf_counter() - started
    total = digest(fps)
    write_fingerprint_file(opts["out"], fps, {
        "dataset": opts["dataset"], "part": opts["part"], "samples": len(fps),
        "shape": "x".join(str(d) for d in part.shape), "digest": total,
    })
    nbytes = len(part) * int(np.prod(part.shape))
    result = {"file": opts["out"], "dataset": opts["dataset"], "part": opts["part"],
              "samples": len(fps), "algorithm": ALGORITHM, "digest": total,
              "seconds": seconds, "gb_per_s": nbytes / max(seconds, 1e-9) / 1e9}
    if opts["as_json"]:
        emit_json(result)
    else:
        click.echo(f"{len(fps)} {opts['part']} samples of {opts['dataset']} fingerprinted "
                   f"({ALGORITHM}, {result['gb_per_s']:.2f} GB/s) -> {opts['out']}", err=True)
        click.echo(f"digest {total}", err=True)
