"""Batches over in-memory or streamed data, with GPU-side augmentation.

The caller decides the order (a shuffled index array from the Rust sampler, or
``arange`` for evaluation); :func:`iterate_batches` gathers the ``uint8`` images of each
batch where they live (or has ``DataLoader`` workers read them, for streamed data), moves
them to the device and converts them to ``float32`` in ``[0, 1]`` there, augmenting on the
device when asked. Evaluation never augments. Both kinds of data give the same batches for
the same pixels.

The augmentation is the reference code's train transform, ``RandomCrop(size, padding=p)``
(zero padding) followed by ``RandomHorizontalFlip()``, done for a whole batch with one
gather and no per-sample Python loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dau.data.streaming import StreamData
from dau.data.types import DatasetInfo, ImageData, as_index, describe
from dau.errors import DataError

__all__ = ["augment", "iterate_batches", "to_device", "to_float"]

log = logging.getLogger(__name__)


def augment(
    batch_u8: torch.Tensor,
    *,
    crop_padding: int,
    hflip: bool,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, per sample.

    ``batch_u8`` is ``uint8 [N, C, H, W]``; the result is ``float32 [N, C, H, W]`` in
    ``[0, 1]`` on the same device. Each sample's crop offsets are uniform in
    ``[0, 2 * crop_padding]`` on both axes of the padded image and it is flipped with
    probability 1/2 (after cropping, as in torchvision). The random numbers are drawn from
    ``generator`` (on its device; the default CPU generator when None): the crop rows, the
    crop columns, then the flips, each as one batch-sized draw, so a seeded generator gives
    the same result every time. With ``crop_padding=0`` and ``hflip=False`` this is just
    ``batch_u8 / 255``.
    """
    if (not isinstance(batch_u8, torch.Tensor) or batch_u8.dtype != torch.uint8
            or batch_u8.dim() != 4):
        raise DataError(
            "augment: batch_u8 must be a torch.uint8 tensor [N, C, H, W]; got "
            + describe(batch_u8)
        )
    if not isinstance(crop_padding, int) or isinstance(crop_padding, bool) or crop_padding < 0:
        raise DataError(f"augment: crop_padding must be an integer ≥ 0; got {crop_padding!r}")
    return to_float(_crop_flip(batch_u8, crop_padding, bool(hflip), generator))


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float32 in [0, 1]; a float batch (a source's transform made it) as is."""
    if batch.dtype != torch.uint8:
        return batch.to(torch.float32)
    return batch.to(torch.float32).div_(255.0)


def _crop_flip(
    batch: torch.Tensor, padding: int, hflip: bool, generator: torch.Generator | None
) -> torch.Tensor:
    n, c, h, w = batch.shape
    if n == 0 or (padding == 0 and not hflip):
        return batch
    device = batch.device
    draw_on = generator.device if generator is not None else torch.device("cpu")
    if padding > 0:
        off_y = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=draw_on)
        off_x = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=draw_on)
    if hflip:
        flip = torch.rand(n, generator=generator, device=draw_on) < 0.5
        flip = flip.to(device, non_blocking=True)
    if padding == 0:
        return torch.where(flip[:, None, None, None], batch.flip(3), batch)

    off_y = off_y.to(device, non_blocking=True)
    off_x = off_x.to(device, non_blocking=True)
    padded = F.pad(batch, (padding, padding, padding, padding))  # zeros
    rows = off_y[:, None] + torch.arange(h, device=device)  # [n, h]
    cols = off_x[:, None] + torch.arange(w, device=device)  # [n, w]
    if hflip:  # flipping the crop = reading its columns backwards
        cols = torch.where(flip[:, None], cols.flip(1), cols)
    # One gather over each sample's flattened padded image (same positions for every channel).
    width = w + 2 * padding
    flat = (rows[:, :, None] * width + cols[:, None, :]).view(n, 1, h * w)
    out = padded.view(n, c, -1).gather(2, flat.expand(n, c, h * w))
    return out.view(n, c, h, w)


def iterate_batches(
    data: ImageData | StreamData,
    order: torch.Tensor | np.ndarray | Sequence[int],
    batch_size: int,
    *,
    augment: bool,
    info: DatasetInfo | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches in the given ``order`` of positions into ``data``.

    ``x`` is ``float32 [B, C, H, W]`` in ``[0, 1]`` and ``y`` is ``int64 [B]``, both on
    ``device`` (default: where ``data`` is). With ``augment=True`` each batch gets
    :func:`augment` with ``info.crop_padding`` and ``info.hflip``, using ``generator``.
    The last, smaller batch is dropped when ``drop_last``. Positions are checked up front.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise DataError(f"iterate_batches: batch_size must be an integer ≥ 1; got {batch_size!r}")
    if augment and info is None:
        raise DataError("iterate_batches: augment=True needs info (a DatasetInfo)")
    source = data.images.device if isinstance(data, ImageData) else torch.device("cpu")
    target = torch.device(device) if device is not None else source
    idx = as_index(order, len(data), source, what="iterate_batches: order")
    padding = info.crop_padding if (augment and info is not None) else 0
    flip = bool(info.hflip) if (augment and info is not None) else False
    if isinstance(data, StreamData):
        return (
            (to_float(_crop_flip(images, padding, flip, generator)), labels)
            for images, labels in data.read(idx, batch_size, device=target, drop_last=drop_last,
                                            floats=target.type == "cpu")
        )
    return _batches(data, idx, batch_size, target, padding, flip, generator, drop_last)


def _batches(
    data: ImageData, idx: torch.Tensor, batch_size: int, target: torch.device, padding: int,
    flip: bool, generator: torch.Generator | None, drop_last: bool,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    total = idx.shape[0]
    stop = total - total % batch_size if drop_last else total
    for start in range(0, stop, batch_size):
        chunk = idx[start:start + batch_size]
        images = data.images.index_select(0, chunk).to(target, non_blocking=True)
        labels = data.labels.index_select(0, chunk).to(target, non_blocking=True)
        yield to_float(_crop_flip(images, padding, flip, generator)), labels


def to_device(
    data: ImageData | StreamData, device: torch.device | str, *, max_fraction: float = 0.5
) -> ImageData | StreamData:
    """``data`` resident on ``device`` when it fits, else left on the CPU (pinned for CUDA).

    On a CUDA device the data moves when it needs at most ``max_fraction`` of the device's
    free memory; otherwise it stays in (pinned) host memory and :func:`iterate_batches`
    copies one batch at a time. Data already on ``device``, and streamed data (read batch
    by batch into pinned memory), are returned as they are.
    """
    if isinstance(data, StreamData):
        return data
    target = torch.device(device)
    if data.images.device == target or (
        target.type == data.images.device.type and target.index is None
    ):
        return data
    if target.type == "cuda":
        need = data.images.numel() * data.images.element_size() + data.labels.numel() * 8
        free, _ = torch.cuda.mem_get_info(target)
        if need > max_fraction * free:
            log.info(
                "dataset of %.1f MiB does not fit in %.0f%% of the %.1f MiB free on %s; "
                "keeping it in host memory", need / 2**20, 100 * max_fraction, free / 2**20,
                target,
            )
            cpu = data if data.images.device.type == "cpu" else ImageData(
                data.images.cpu(), data.labels.cpu()
            )
            return ImageData(cpu.images.pin_memory(), cpu.labels.pin_memory())
    return ImageData(data.images.to(target), data.labels.to(target))
