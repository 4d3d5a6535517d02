"""Streaming sources: datasets read sample by sample, never held in memory whole.

A :class:`StreamData` is a training or test part over a map-style ``torch.utils.data.Dataset``
whose labels are known up front (split planning needs the labels only). Batches are read by
``DataLoader`` workers in the order the Rust samplers give, so a run's batch order is the same
as on in-memory data. Sources:

``imagefolder`` (:func:`image_folder`)
    ``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*`` (``val/`` is taken when there is no
    ``test/``), or one ``ROOT/<class>/*`` tree split per class by ``test_fraction``. Samples
    are ordered by file name (then class): a tree written by
    :func:`dau.data.formats.write_image_folder` keeps its dataset's order.
``filelist`` (:func:`file_list`)
    CSV (``path,label[,id]``, optional header) or JSONL (``{"path", "label"[, "id"]}``) files;
    paths relative to the list's directory; labels integers or class names.
:func:`from_torch`
    any map-style ``Dataset`` (Python only) yielding image tensors or ``(image, label)``.

Images are decoded with Pillow to ``uint8`` ``C×H×W`` pixels, exactly what in-memory data
holds, so augmentation, batches and fingerprints are the same for a sample whether it is read
from an array or from a lossless file. A ``transform`` (PIL image → tensor) replaces that
decoding for the batches; fingerprints always hash the decoded pixels. Without a
transform, the normalisation is the exact per-channel mean and std of the training pixels,
from the same cached pass as the fingerprints: an exported dataset normalises as the original.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from dau.data.builtin import stratified_split
from dau.data.registry import bool_option, int_option, register_dataset, with_spec
from dau.data.types import Dataset, DatasetInfo, ImageData, as_index, channel_stats, describe
from dau.errors import DataError

__all__ = ["DecodedImages", "StreamData", "default_workers", "file_list", "from_torch",
           "image_folder"]

log = logging.getLogger(__name__)


def default_workers() -> int:
    """``DataLoader`` workers for streamed batches: ``DAU_DATA_WORKERS``, else one per core
    but one (at most 8)."""
    env = os.environ.get("DAU_DATA_WORKERS")
    if env is not None:
        try:
            return max(0, int(env))
        except ValueError:
            raise DataError(f"DAU_DATA_WORKERS: expected a number of workers, got {env!r}") from None
    return max(0, min(8, (os.cpu_count() or 1) - 1))


class StreamData:
    """A part (train or test) read sample by sample: ``samples[i]`` is an image tensor
    ``C×H×W`` (or an ``(image, label)`` pair), ``labels[i]`` its class.

    ``raw[i]`` gives the sample's decoded ``uint8`` pixels for fingerprints (None: the
    samples are those pixels when they are ``uint8``). ``positions`` make a view.
    """

    def __init__(self, samples: TorchDataset[Any], labels: torch.Tensor, *,
                 shape: tuple[int, ...], raw: TorchDataset[Any] | None = None,
                 positions: np.ndarray | None = None, workers: int | None = None) -> None:
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.dim() != 1:
            raise DataError(f"StreamData: labels must be a torch.int64 tensor [N]; got "
                            f"{describe(labels)}")
        self.samples, self.raw, self.shape = samples, raw, tuple(shape)
        self._all_labels = labels
        self.positions = np.arange(len(labels), dtype=np.int64) if positions is None else positions
        self.workers = default_workers() if workers is None else workers
        self._memo: dict[str, Scan] = {}  # shared by this part's views

    @property
    def labels(self) -> torch.Tensor:
        return self._all_labels[torch.from_numpy(self.positions)]

    def __len__(self) -> int:
        return len(self.positions)

    def subset(self, indices: torch.Tensor | np.ndarray | Sequence[int]) -> StreamData:
        """The samples at ``indices`` (positions in this part, in that order)."""
        idx = as_index(indices, len(self), torch.device("cpu"), what="subset indices").numpy()
        view = StreamData(self.samples, self._all_labels, shape=self.shape, raw=self.raw,
                          positions=self.positions[idx], workers=self.workers)
        view._memo = self._memo
        return view

    def read(self, order: torch.Tensor, batch_size: int, *, device: torch.device,
             drop_last: bool = False, raw: bool = False,
             floats: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(images, labels)`` batches at positions ``order`` (of this part), on ``device``:
        images as the samples give them (``uint8`` pixels unless a transform makes floats),
        or, with ``floats``, as ``float32`` in [0, 1], converted by the workers (the batch
        then arrives in shared memory: converting each in this process fragments its heap
        between the workers' deliveries, which grew it by ~400 MiB per pass over 10,000
        64×64 images)."""
        where = self.positions[order.cpu().numpy()]
        total = len(where)
        stop = total - total % batch_size if drop_last else total
        chunks = [where[s:s + batch_size].tolist() for s in range(0, stop, batch_size)]
        source = self._pixels() if raw else self.samples
        collate = _Collate(self.shape, raw=raw, floats=floats and not raw)
        workers = self.workers if len(chunks) > 1 else 0  # one batch: no worker start-up
        loader = DataLoader(source, batch_sampler=chunks, num_workers=workers,
                            collate_fn=collate, pin_memory=device.type == "cuda",
                            persistent_workers=False, generator=_own_generator())
        for chunk, images in zip(chunks, loader, strict=True):
            labels = self._all_labels[torch.tensor(chunk, dtype=torch.int64)]
            yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)

    def _pixels(self) -> TorchDataset[Any]:
        return self.raw if self.raw is not None else self.samples

    def fingerprints(self, batch_size: int = 256) -> np.ndarray:
        """The fingerprints ``[N, 16]`` of the decoded pixels, in position order (see
        :meth:`scan`)."""
        return self.scan(batch_size).fingerprints[self.positions]

    def stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std on [0, 1] of this part's decoded pixels, exact (the
        same as :func:`~dau.data.types.channel_stats` of the pixels in memory)."""
        if len(self.positions) != len(self._all_labels):  # a view: its own pixels
            pixels = self.materialize().images
            return channel_stats(pixels) if len(pixels) else _unit(self.shape[0])
        scan = self.scan()
        return _moments(scan.sums, scan.squares, len(self.positions) * self.shape[1] * self.shape[2],
                        self.shape[0])

    def scan(self, batch_size: int = 256) -> Scan:
        """One pass over every sample of the source (all positions, not just this view's):
        fingerprints and exact pixel sums. Image files are decoded once: the result is
        cached under ``$XDG_CACHE_HOME/dau/fingerprints/``, keyed by every file's path, size
        and modification time (and the decoding mode and size), so a changed file is re-read.
        """
        from dau.data.fingerprints import fingerprint_images

        if "scan" in self._memo:
            return self._memo["scan"]
        cache = _cache_file(self._pixels())
        if cache is not None and cache.exists():
            with np.load(cache) as saved:
                found = Scan(saved["fingerprints"], saved["sums"], saved["squares"])
            self._memo["scan"] = found
            return found
        whole = StreamData(self.samples, self._all_labels, shape=self.shape, raw=self.raw,
                           workers=self.workers)
        c = self.shape[0]
        parts, sums, squares = [], torch.zeros(c, dtype=torch.int64), torch.zeros(c, dtype=torch.int64)
        for x, _ in whole.read(torch.arange(len(whole)), batch_size, device=torch.device("cpu"),
                               raw=True):
            parts.append(fingerprint_images(x))
            sums += x.sum(dim=(0, 2, 3), dtype=torch.int64)
            wide = x.to(torch.int32)
            squares += wide.mul_(wide).sum(dim=(0, 2, 3), dtype=torch.int64)
        every = np.concatenate(parts) if parts else np.zeros((0, 16), np.uint8)
        found = Scan(every, sums.numpy(), squares.numpy())
        if cache is not None:
            _save_cache(cache, found)
        self._memo["scan"] = found
        return found

    def materialize(self) -> ImageData:
        """The part in memory as :class:`ImageData` (decoded pixels)."""
        batches = list(self.read(torch.arange(len(self)), 512, device=torch.device("cpu"),
                                 raw=True))
        if not batches:
            return ImageData(torch.zeros((0, *self.shape), dtype=torch.uint8),
                             torch.zeros(0, dtype=torch.int64))
        return ImageData(torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches]))


def _own_generator() -> torch.Generator:
    """The generator a ``DataLoader`` draws its workers' base seed from. Without one it draws
    from torch's global generator, on every read: a streamed run would then draw other
    dropout masks (DAU's attacker) than the same run on data in memory."""
    return torch.Generator().manual_seed(0)


class Scan(NamedTuple):
    """What one pass over a source's pixels gives: fingerprints ``[N, 16]`` and, per channel,
    the sum of the pixel values and of their squares (exact integers)."""

    fingerprints: np.ndarray
    sums: np.ndarray
    squares: np.ndarray


def _unit(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return (0.0,) * channels, (1.0,) * channels


def _moments(sums: np.ndarray, squares: np.ndarray, count: int,
             channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std on [0, 1] from exact sums over ``count`` values per channel, rounded
    as :func:`~dau.data.types.channel_stats` rounds."""
    if count == 0:
        return _unit(channels)
    mean = [int(s) / count for s in sums]
    var = [max(int(q) / count - m * m, 0.0) for q, m in zip(squares, mean, strict=True)]
    return (tuple(round(m / 255.0, 4) for m in mean),
            tuple(round(max(v ** 0.5 / 255.0, 1e-4), 4) for v in var))


def _cache_file(pixels: Any) -> Path | None:
    """Where the fingerprints of image files are cached, or None for other samples."""
    import hashlib

    from dau.data.readers import default_cache_dir

    if not isinstance(pixels, DecodedImages):
        return None
    digest = hashlib.sha256(f"{pixels.mode}|{pixels.size}".encode())
    for path in pixels.paths:
        st = os.stat(path)
        digest.update(f"\0{path}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return default_cache_dir().parent / "fingerprints" / f"{digest.hexdigest()[:32]}.npz"


def _save_cache(path: Path, scan: Scan) -> None:
    from dau._atomic import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as fh:
            np.savez(fh, **scan._asdict())
    except OSError as exc:  # a read-only cache only costs the next command a re-read
        log.info("could not cache fingerprints in %s: %s", path, exc)


class _Collate:
    """Stacks a batch of samples, checking each is an image tensor of the part's shape."""

    def __init__(self, shape: tuple[int, ...], *, raw: bool, floats: bool = False) -> None:
        self.shape, self.raw, self.floats = shape, raw, floats

    def __call__(self, items: list[Any]) -> torch.Tensor:
        images = [item[0] if isinstance(item, (tuple, list)) else item for item in items]
        for image in images:
            if not isinstance(image, torch.Tensor):
                raise DataError(
                    f"a dataset sample is a {type(image).__name__}; samples must be image "
                    "tensors C×H×W (add torchvision.transforms.PILToTensor() or ToTensor())")
            if tuple(image.shape) != self.shape:
                raise DataError(f"a dataset sample has shape {tuple(image.shape)}; the source's "
                                f"images are {self.shape} (C, H, W): give them one size")
            if self.raw and image.dtype != torch.uint8:
                raise DataError(f"fingerprints need uint8 pixels; the samples are {image.dtype} "
                                "(give the source the decoded images as its raw samples)")
        batch = torch.stack(images)
        if self.floats:
            from dau.data.loaders import to_float

            return to_float(batch)
        return batch


# ---------------------------------------------------------------------------------------------
# Image files
# ---------------------------------------------------------------------------------------------


class DecodedImages(TorchDataset[torch.Tensor]):
    """Image files decoded with Pillow to ``mode`` (``L`` or ``RGB``), resized to ``size``
    (H, W) when given, then ``transform``\\ ed (PIL image → tensor) or made ``uint8`` C×H×W."""

    def __init__(self, paths: Sequence[str], mode: str, size: tuple[int, int] | None = None,
                 transform: Callable[[Any], Any] | None = None) -> None:
        self.paths, self.mode, self.size, self.transform = list(paths), mode, size, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image

        with Image.open(self.paths[index]) as file:
            image = file.convert(self.mode)
        if self.size is not None and image.size != (self.size[1], self.size[0]):
            image = image.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
        if self.transform is not None:
            return self.transform(image)
        pixels = np.array(image, dtype=np.uint8)  # a writable copy
        chw = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(chw))


def _check_images(paths: Sequence[str], size: tuple[int, int] | None,
                  what: str) -> tuple[str, tuple[int, int]]:
    """The common mode (``L``/``RGB``) and size (H, W) of image files, read from their headers;
    :class:`DataError` listing unreadable files and, without ``size``, differing sizes."""
    from PIL import Image, UnidentifiedImageError

    sizes: dict[tuple[int, int], list[str]] = {}
    bad: list[str] = []
    gray = True
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes.setdefault((image.height, image.width), []).append(path)
                gray = gray and image.mode in ("L", "1", "I", "I;16", "F")
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            bad.append(f"{path} ({exc})")
    if bad:
        raise DataError(f"{what}: {len(bad)} file(s) are not readable images, e.g. "
                        + "; ".join(bad[:3]))
    if not sizes:
        raise DataError(f"{what}: no image files found")
    if size is None and len(sizes) > 1:
        common = max(sizes, key=lambda s: len(sizes[s]))
        odd = [f"{p} is {w}x{h}" for (h, w), ps in sizes.items() if (h, w) != common
               for p in ps[:2]]
        raise DataError(f"{what}: the images have {len(sizes)} different sizes (most are "
                        f"{common[1]}x{common[0]}; {'; '.join(odd[:3])}); give size=H (or "
                        "size=HxW) to resize them all, or resize them in a transform")
    return ("L" if gray else "RGB"), (size or next(iter(sizes)))


def _files_dataset(name: str, source: str, classes: Sequence[str],
                   train: tuple[list[str], list[int]], test: tuple[list[str], list[int]], *,
                   size: tuple[int, int] | None, channels: int, transform: Callable[[Any], Any] | None,
                   hflip: bool, crop_padding: int, workers: int | None) -> Dataset:
    mode, (height, width) = _check_images(train[0] + test[0], size, f"dataset {source!r}")
    if channels:
        mode = "L" if channels == 1 else "RGB"
    c = 1 if mode == "L" else 3
    parts = []
    for paths, labels in (train, test):
        raw = DecodedImages(paths, mode, size)
        samples = raw if transform is None else DecodedImages(paths, mode, size, transform)
        parts.append(StreamData(samples, torch.tensor(labels, dtype=torch.int64),
                                shape=(c, height, width), raw=None if transform is None else raw,
                                workers=workers))
    if transform is not None:  # the batches' shape is the transform's
        probe = parts[0].samples[0] if len(parts[0]) else None
        if isinstance(probe, torch.Tensor):
            for part in parts:
                part.shape = tuple(probe.shape)
    shape = parts[0].shape
    if transform is None:  # exact, from the pass that also fingerprints (cached)
        mean, std = parts[0].stats()
    else:  # the transform owns normalisation: dau's models must not add their own
        mean, std = _unit(shape[0])
    info = DatasetInfo(name=name, num_classes=len(classes), channels=shape[0], height=shape[1],
                       width=shape[2], mean=mean, std=std, class_names=tuple(classes),
                       hflip=hflip, crop_padding=crop_padding, source=source)
    return Dataset(info, parts[0], parts[1])


def _per_class_split(labels: list[int], test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return stratified_split(np.asarray(labels, dtype=np.int64), test_fraction, seed)


def _take(items: tuple[list[str], list[int]], where: np.ndarray) -> tuple[list[str], list[int]]:
    return [items[0][i] for i in where], [items[1][i] for i in where]


def _check_fraction(test_fraction: float) -> float:
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) \
            or not 0.0 <= float(test_fraction) < 1.0:
        raise DataError(f"test_fraction: expected a number in [0, 1); got {test_fraction!r}")
    return float(test_fraction)


def image_folder(root: str | os.PathLike[str], *, size: int | tuple[int, int] | None = None,
                 channels: int = 0, test_fraction: float = 0.1, seed: int = 0,
                 transform: Callable[[Any], Any] | None = None, hflip: bool = False,
                 crop_padding: int = 0, workers: int | None = None) -> Dataset:
    """An ``ImageFolder`` tree as a streamed :class:`Dataset` (see the module docstring).

    ``size`` resizes every image (else all must have one size); ``channels`` forces 1 (``L``)
    or 3 (``RGB``), else grayscale files stay 1-channel. ``test_fraction``/``seed`` split a
    tree without ``train/`` per class. ``hflip``/``crop_padding`` are the training
    augmentation dau applies on the device; ``transform`` is applied to every PIL image.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"imagefolder: root {str(base)!r} is not a directory")
    train_dir = base / "train"
    test_dir = next((base / d for d in ("test", "val") if (base / d).is_dir()), None)

    def scan(directory: Path, classes: list[str] | None) -> tuple[list[str], tuple[list[str], list[int]]]:
        try:
            found, mapping = find_classes(str(directory))
        except FileNotFoundError as exc:
            raise DataError(f"imagefolder: {exc}") from None
        if classes is not None and found != classes:
            raise DataError(f"imagefolder: {directory} has classes {found}, but the training "
                            f"tree has {classes}; they must be the same")
        pairs = make_dataset(str(directory), mapping, extensions=IMG_EXTENSIONS,
                             allow_empty=True)
        pairs.sort(key=lambda pair: (Path(pair[0]).name, pair[1]))  # by file name, not class
        return found, ([p for p, _ in pairs], [c for _, c in pairs])

    fraction = _check_fraction(test_fraction)
    if train_dir.is_dir():
        classes, train = scan(train_dir, None)
        test = scan(test_dir, classes)[1] if test_dir is not None else ([], [])
    else:
        classes, every = scan(base, None)
        tr, te = _per_class_split(every[1], fraction, seed)
        train, test = _take(every, tr), _take(every, te)
    if len(classes) < 2:
        raise DataError(f"imagefolder: {base} has {len(classes)} class folder(s); need at least 2")
    dataset = _files_dataset("imagefolder", str(base.resolve()), classes, train, test,
                             size=_size(size), channels=channels, transform=transform,
                             hflip=hflip, crop_padding=crop_padding, workers=workers)
    return _with_spec(dataset, transform, root=base.resolve(), size=size, channels=channels,
                      test_fraction=None if train_dir.is_dir() else fraction, seed=seed,
                      hflip=hflip, crop_padding=crop_padding)


def _size(size: int | str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``size`` as (H, W): an integer (square), ``"HxW"`` or a pair; None or 0: keep."""
    if size is None or size == 0:
        return None
    if isinstance(size, str) and "x" in size:
        h, _, w = size.partition("x")
        size = (int(h), int(w))
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if not (isinstance(size, tuple) and len(size) == 2 and all(
            isinstance(v, int) and v > 0 for v in size)):
        raise DataError(f"size: expected a positive integer or HxW; got {size!r}")
    return size


def _read_list(path: Path) -> list[tuple[str, str, str | None]]:
    """``(path, label, id)`` rows of a CSV or JSONL file list."""
    if not path.is_file():
        raise DataError(f"filelist: {str(path)!r} does not exist")
    rows: list[tuple[str, str, str | None]] = []
    if path.suffix in (".jsonl", ".ndjson"):
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                rows.append((str(obj["path"]), str(obj["label"]),
                             None if obj.get("id") is None else str(obj["id"])))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"filelist: {path}:{n}: expected a JSON object with 'path' and "
                                f"'label'; {exc}") from None
        return rows
    with path.open(newline="") as fh:
        table = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if table and [c.strip().lower() for c in table[0][:2]] == ["path", "label"]:
        table = table[1:]
    for n, row in enumerate(table, start=1):
        if len(row) < 2:
            raise DataError(f"filelist: {path}: row {n} has {len(row)} column(s); expected "
                            "path,label[,id]")
        rows.append((row[0].strip(), row[1].strip(), row[2].strip() if len(row) > 2 else None))
    return rows


def file_list(train: str | os.PathLike[str], test: str | os.PathLike[str] | None = None, *,
              test_fraction: float = 0.1, seed: int = 0, size: int | tuple[int, int] | None = None,
              channels: int = 0, transform: Callable[[Any], Any] | None = None,
              hflip: bool = False, crop_padding: int = 0, workers: int | None = None) -> Dataset:
    """Image files listed in CSV/JSONL files as a streamed :class:`Dataset`.

    Without a ``test`` list the ``train`` list is split per class by ``test_fraction``.
    Integer labels are class indices; otherwise the sorted distinct names are the classes.
    """
    lists = [Path(train).expanduser()] + ([Path(test).expanduser()] if test is not None else [])
    tables = [_read_list(p) for p in lists]
    names = sorted({label for table in tables for _, label, _ in table})
    numeric = all(n.lstrip("-").isdigit() for n in names)
    if numeric:
        values = sorted(int(n) for n in names)
        if values and values[0] < 0:
            raise DataError(f"filelist: labels must be ≥ 0; found {values[0]}")
        classes = [str(i) for i in range(values[-1] + 1)] if values else []
    else:
        classes = names
    index = {name: i for i, name in enumerate(classes)}
    parts = []
    for path, table in zip(lists, tables, strict=True):
        files = [str(path.parent / p) for p, _, _ in table]
        labels = [int(lab) if numeric else index[lab] for _, lab, _ in table]
        parts.append((files, labels))
    if test is None:
        tr, te = _per_class_split(parts[0][1], _check_fraction(test_fraction), seed)
        parts = [_take(parts[0], tr), _take(parts[0], te)]
    if len(classes) < 2:
        raise DataError(f"filelist: {lists[0]} names {len(classes)} class(es); need at least 2")
    dataset = _files_dataset("filelist", str(lists[0].resolve()), classes, parts[0], parts[1],
                             size=_size(size), channels=channels, transform=transform,
                             hflip=hflip, crop_padding=crop_padding, workers=workers)
    return _with_spec(dataset, transform, path=lists[0].resolve(),
                      test_path=lists[1].resolve() if test is not None else None, size=size,
                      channels=channels, test_fraction=None if test is not None else test_fraction,
                      seed=seed, hflip=hflip, crop_padding=crop_padding)


def _with_spec(dataset: Dataset, transform: Any, **options: Any) -> Dataset:
    """``dataset`` with the spec that loads it again by name (none with a Python transform)."""
    if transform is not None:
        return dataset
    size = _size(options.pop("size"))
    options["size"] = None if size is None else f"{size[0]}x{size[1]}"
    shown = {k: v for k, v in options.items() if v not in (None, 0, False, "")}
    return with_spec(dataset, dataset.info.name, shown)


# ---------------------------------------------------------------------------------------------
# Any torch Dataset
# ---------------------------------------------------------------------------------------------


def _labels_of(dataset: TorchDataset[Any], what: str, workers: int) -> torch.Tensor:
    targets = getattr(dataset, "targets", None)
    if targets is not None and len(targets) == len(dataset):  # type: ignore[arg-type]
        return torch.as_tensor(np.asarray(targets), dtype=torch.int64)
    log.info("%s has no .targets; reading every sample once for its label", what)
    loader = DataLoader(dataset, batch_size=256, num_workers=workers,
                        collate_fn=lambda items: [item[1] for item in items],
                        generator=_own_generator())
    labels = [int(label) for batch in loader for label in batch]
    return torch.tensor(labels, dtype=torch.int64)


def from_torch(train: TorchDataset[Any], test: TorchDataset[Any] | None = None, *,
               num_classes: int | None = None, class_names: Sequence[str] | None = None,
               raw_train: TorchDataset[Any] | None = None, raw_test: TorchDataset[Any] | None = None,
               name: str = "torch", hflip: bool = False, crop_padding: int = 0,
               mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
               workers: int | None = None) -> Dataset:
    """Map-style datasets yielding ``(image C×H×W tensor, label)`` as a streamed :class:`Dataset`.

    Labels come from ``.targets`` when the dataset has it, else from one pass over it.
    Deletion requests by content need the decoded ``uint8`` pixels: the samples themselves when
    they are ``uint8``, else ``raw_train``/``raw_test`` (same order, no random transform).
    """
    workers = default_workers() if workers is None else workers
    parts: list[tuple[Any, torch.Tensor, Any] | None] = []
    for what, data, raw in (("train", train, raw_train), ("test", test, raw_test)):
        if data is None:
            parts.append(None)
            continue
        if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
            raise DataError(f"{what}: expected a map-style torch Dataset (with __getitem__ and "
                            f"__len__); got {type(data).__name__}")
        labels = _labels_of(data, what, workers)
        parts.append((data, labels, raw))
    first = train[0] if len(train) else None  # type: ignore[arg-type]
    image = first[0] if isinstance(first, (tuple, list)) else first
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        raise DataError(f"train: samples must be image tensors C×H×W (or (image, label)); the "
                        f"first is {describe(image)}")
    shape = tuple(image.shape)
    train_part, test_part = (
        StreamData(_Empty(), torch.zeros(0, dtype=torch.int64), shape=shape) if p is None
        else StreamData(p[0], p[1], shape=shape, raw=p[2], workers=workers) for p in parts)
    found = int(train_part.labels.max()) + 1 if len(train_part) else 0
    k = num_classes if num_classes is not None else (len(class_names) if class_names else found)
    if found > k or (len(test_part) and int(test_part.labels.max()) >= k):
        raise DataError(f"num_classes: the labels go up to {max(found, 1) - 1} but num_classes "
                        f"is {k}")
    c = shape[0]
    info = DatasetInfo(name=name, num_classes=k, channels=c, height=shape[1], width=shape[2],
                       mean=tuple(mean) if mean else (0.0,) * c,
                       std=tuple(std) if std else (1.0,) * c,
                       class_names=tuple(class_names) if class_names else tuple(map(str, range(k))),
                       hflip=hflip, crop_padding=crop_padding, source=f"{type(train).__name__}")
    return Dataset(info, train_part, test_part)


class _Empty(TorchDataset[Any]):
    def __len__(self) -> int:
        return 0

    def __getitem__(self, index: int) -> Any:
        raise IndexError(index)


# ---------------------------------------------------------------------------------------------
# Registered names: "imagefolder:ROOT,size=64" and "filelist:LIST.csv,test_path=TEST.csv"
# ---------------------------------------------------------------------------------------------


def _workers(dataset: str, workers: int) -> int | None:
    value = int_option(dataset, "workers", workers, -1)
    return None if value < 0 else value


@register_dataset("imagefolder")
def _load_image_folder(*, data_dir: Path | None, download: bool | None, root: str = "",
                       size: int | str = 0, channels: int = 0, test_fraction: float = 0.1,
                       seed: int = 0, hflip: bool = False, crop_padding: int = 0,
                       workers: int = -1) -> Dataset:
    if not root:
        raise DataError("dataset 'imagefolder': give its root, e.g. imagefolder:photos/")
    return image_folder(root, size=_size(size), channels=int_option("imagefolder", "channels",
                        channels, 0, 3), test_fraction=test_fraction,
                        seed=int_option("imagefolder", "seed", seed, 0),
                        hflip=bool_option("imagefolder", "hflip", hflip),
                        crop_padding=int_option("imagefolder", "crop_padding", crop_padding, 0),
                        workers=_workers("imagefolder", workers))


@register_dataset("filelist")
def _load_file_list(*, data_dir: Path | None, download: bool | None, path: str = "",
                    test_path: str = "", size: int | str = 0, channels: int = 0,
                    test_fraction: float = 0.1, seed: int = 0, hflip: bool = False,
                    crop_padding: int = 0, workers: int = -1) -> Dataset:
    if not path:
        raise DataError("dataset 'filelist': give its list, e.g. filelist:train.csv")
    return file_list(path, test_path or None, size=_size(size),
                     channels=int_option("filelist", "channels", channels, 0, 3),
                     test_fraction=test_fraction, seed=int_option("filelist", "seed", seed, 0),
                     hflip=bool_option("filelist", "hflip", hflip),
                     crop_padding=int_option("filelist", "crop_padding", crop_padding, 0),
                     workers=_workers("filelist", workers))
