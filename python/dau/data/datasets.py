"""Datasets: a small registry of in-memory image-classification datasets.

A dataset is held fully in memory: ``images`` is a ``torch.uint8`` tensor ``[N, C, H, W]``
(channels first, always 4-D; grayscale has ``C = 1``) and ``labels`` is ``torch.int64 [N]``.
Nothing here normalises: models normalise inside with :attr:`DatasetInfo.mean` and
:attr:`DatasetInfo.std`.

Names (:func:`list_datasets`):

``cifar10``, ``cifar100``, ``svhn``, ``mnist``, ``fashion-mnist``
    Read through torchvision's own readers from local files. The root is searched in this
    order: the ``data_dir`` argument, the ``DAU_DATA`` environment variable, Debian's
    ``/usr/share/datasets/<name>/``, the download cache (``$XDG_CACHE_HOME/dau/data``,
    by default ``~/.cache/dau/data``); each of the first, second and last is tried both as
    given and with ``/<name>`` appended. Both torchvision's layout (``cifar-10-batches-py/``,
    ``cifar-100-python/``, ``MNIST/raw/``, ``FashionMNIST/raw/``, ``*_32x32.mat``) and a flat
    layout with the raw files directly in the directory are accepted; MNIST idx files may be
    gzip-compressed. When nothing is found and ``download`` is not ``False``, torchvision
    downloads the data into ``data_dir``, else ``DAU_DATA``, else the cache.
``digits``
    scikit-learn's bundled 8×8 digits (1 797 images, values 0–16 scaled to 0–255), split
    per class into train/test by a seeded legacy ``numpy.random.RandomState`` (stable across
    NumPy versions); options ``test_fraction=0.2``, ``seed=0``.
``synthetic``
    Seeded class-prototype images plus noise, any shape; options ``num_classes=10``,
    ``channels=3``, ``size=32``, ``train=2000``, ``test=500``, ``seed=0``. Also written as
    ``"synthetic:classes=10,channels=1,size=16,train=500,test=100,seed=3"``.

Options may always be given in that string form (``"digits:seed=3"``) or as keyword
arguments of :func:`load_dataset`.

Checksums. torchvision's CIFAR and SVHN classes refuse any file whose MD5 differs from the
official release, which would reject every custom or test file in the same format. dau reads
them through subclasses whose integrity check only requires the files to exist, and then,
when the data has the official sample counts (so it claims to be the official release),
verifies the files against torchvision's own MD5 table and raises :class:`DataError` on a
mismatch (``verify=False`` skips this). Data with other counts is loaded as a custom dataset
in that format, and this is logged. MNIST-style files are not MD5-checked (torchvision does not
check them when reading either; the published checksums are of ``.gz`` archives, which
repackagers such as Debian recompress); their structure is checked instead.

CIFAR files are Python pickles, read by torchvision with :func:`pickle.load`: only read data
from a source you trust.
"""

from __future__ import annotations

import dataclasses
import difflib
import gzip
import inspect
import logging
import os
import pickle
import shutil
import tempfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from dau._registry import Registry
from dau.errors import ConfigError, DataError

__all__ = [
    "DEBIAN_DATA_ROOT",
    "Dataset",
    "DatasetInfo",
    "ImageData",
    "default_cache_dir",
    "list_datasets",
    "load_dataset",
    "register_dataset",
    "synthetic_arrays",
]

log = logging.getLogger(__name__)

#: Where Debian's dataset packages install data (``/usr/share/datasets/<name>/``).
DEBIAN_DATA_ROOT = Path("/usr/share/datasets")


def default_cache_dir() -> Path:
    """The download cache: ``$XDG_CACHE_HOME/dau/data``, by default ``~/.cache/dau/data``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "dau" / "data"


# ---------------------------------------------------------------------------------------------
# Data classes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and the augmentation need to know about a dataset.

    ``mean``/``std`` are per channel on the [0, 1] scale. ``hflip`` says whether a
    horizontal flip keeps an image's class (not for digits); ``crop_padding`` is the zero
    padding of the random-crop augmentation (0 disables it). ``source`` is where the data
    was read from (a directory, or a description for generated data).
    """

    name: str
    num_classes: int
    channels: int
    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    hflip: bool
    crop_padding: int
    source: str


@dataclass(frozen=True, eq=False)
class ImageData:
    """Images ``uint8 [N, C, H, W]`` and their labels ``int64 [N]``, on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
            raise DataError(
                "ImageData: images must be a torch.uint8 tensor [N, C, H, W]; got "
                f"{_describe(images)}"
            )
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.dim() != 1:
            raise DataError(
                f"ImageData: labels must be a torch.int64 tensor [N]; got {_describe(labels)}"
            )
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"ImageData: {images.shape[0]} images but {labels.shape[0]} labels; "
                "they must be equal"
            )
        if images.device != labels.device:
            raise DataError(
                f"ImageData: images on {images.device} but labels on {labels.device}"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: torch.Tensor | np.ndarray | Sequence[int]) -> ImageData:
        """The samples at ``indices`` (positions, in that order; repeats allowed).

        A boolean mask of length ``len(self)`` selects the samples where it is true.
        """
        idx = _as_index(indices, len(self), self.images.device, what="subset indices")
        return ImageData(self.images.index_select(0, idx), self.labels.index_select(0, idx))


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset: its :class:`DatasetInfo` and its train and test :class:`ImageData`."""

    info: DatasetInfo
    train: ImageData
    test: ImageData

    def __post_init__(self) -> None:
        want = (self.info.channels, self.info.height, self.info.width)
        for part in ("train", "test"):
            data: ImageData = getattr(self, part)
            if tuple(data.images.shape[1:]) != want:
                raise DataError(
                    f"dataset {self.info.name!r}: {part} images have shape "
                    f"{tuple(data.images.shape[1:])}, expected {want} (C, H, W)"
                )


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"numpy {x.dtype} array of shape {x.shape}"
    return type(x).__name__


def _as_index(
    indices: torch.Tensor | np.ndarray | Sequence[int], length: int, device: torch.device,
    *, what: str,
) -> torch.Tensor:
    """Positions as an int64 tensor on ``device``, checked to lie in ``[0, length)``."""
    if isinstance(indices, torch.Tensor):
        idx = indices
    else:
        arr = np.asarray(indices)
        if arr.size == 0:
            arr = arr.astype(np.int64)
        idx = torch.from_numpy(np.ascontiguousarray(arr))
    if idx.dim() != 1:
        raise DataError(f"{what} must be 1-D; got {_describe(idx)}")
    if idx.dtype == torch.bool:
        if idx.shape[0] != length:
            raise DataError(
                f"{what}: a boolean mask must have length {length}; got {idx.shape[0]}"
            )
        idx = torch.nonzero(idx, as_tuple=False).flatten()
    elif idx.dtype.is_floating_point or idx.dtype.is_complex:
        raise DataError(f"{what} must be integers; got {_describe(idx)}")
    idx = idx.to(device=device, dtype=torch.int64)
    if idx.numel():
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= length:
            raise DataError(
                f"{what} must lie in [0, {length}); got values from {lo} to {hi}"
            )
    return idx


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images on the [0, 1] scale, rounded to 4 places."""
    x = images.to(torch.float64).div_(255.0).transpose(0, 1).reshape(images.shape[1], -1)
    mean = tuple(round(float(v), 4) for v in x.mean(dim=1))
    std = tuple(round(max(float(v), 1e-4), 4) for v in x.std(dim=1, correction=0))
    return mean, std


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Dataset])

_REGISTRY: Registry[Callable[..., Dataset]] = Registry(
    "dataset", "--dataset", normalize=lambda name: _normalize_name(name)
)
# Keyword arguments every loader receives; the others are its dataset options.
_COMMON = ("data_dir", "download")
# Aliases accepted in the "name:key=value" string form.
_OPTION_ALIASES = {"classes": "num_classes"}


def register_dataset(name: str) -> Callable[[F], F]:
    """Register a loader under ``name``.

    The loader is called as ``fn(data_dir=..., download=..., **options)``; its other
    keyword-only parameters are the dataset's options.
    """

    def decorator(fn: F) -> F:
        params = inspect.signature(fn).parameters
        missing = [p for p in _COMMON if p not in params]
        if missing:
            raise TypeError(f"dataset loader {fn.__name__} lacks parameters {missing}")
        _REGISTRY.register(name)(fn)
        return fn

    return decorator


def list_datasets() -> list[str]:
    """The registered dataset names, sorted."""
    return _REGISTRY.names()


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool | None = None,
    **options: Any,
) -> Dataset:
    """Load dataset ``name`` (optionally ``"name:key=value,..."``) fully into memory.

    ``data_dir`` is the first place searched for file-backed datasets (see the module
    docstring for the search order). ``download``: ``False`` never downloads; ``None`` or
    ``True`` lets torchvision download into ``data_dir``, else ``DAU_DATA``, else the cache,
    when the files are found nowhere. ``options`` are the dataset's options.
    Raises :class:`ConfigError` for an unknown name or option and :class:`DataError` when
    the data cannot be found or read.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"dataset: expected a dataset name such as 'cifar10'; got {name!r}")
    base, _, spec = name.partition(":")
    key = _normalize_name(base)
    loader = _REGISTRY.get(base)
    allowed = [
        p.name for p in inspect.signature(loader).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _COMMON
    ]
    merged = _parse_options(key, spec, allowed) if spec.strip() else {}
    for opt, value in options.items():
        if opt in merged:
            raise ConfigError(
                f"dataset {key!r}: option {opt!r} given both in the name {name!r} and as an "
                "argument; give it once"
            )
        merged[opt] = value
    for opt in merged:
        if opt not in allowed:
            raise ConfigError(_unknown_option(key, opt, allowed))
    path = Path(os.fspath(data_dir)).expanduser() if data_dir is not None else None
    if download is not None and not isinstance(download, bool):
        raise ConfigError(f"download must be True, False or None; got {download!r}")
    return loader(data_dir=path, download=download, **merged)


def _normalize_name(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _unknown_option(dataset: str, opt: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(opt, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    valid = ", ".join(allowed) if allowed else "none"
    return f"dataset {dataset!r}: unknown option {opt!r}{hint} (valid options: {valid})"


def _parse_options(dataset: str, spec: str, allowed: list[str]) -> dict[str, Any]:
    """Parse ``"key=value,key=value"`` (values: int, float, true/false or text)."""
    out: dict[str, Any] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(
                f"dataset {dataset!r}: option {item!r} must be written key=value "
                f"(e.g. '{dataset}:seed=1')"
            )
        key = _OPTION_ALIASES.get(key, key) if key not in allowed else key
        if key not in allowed:
            raise ConfigError(_unknown_option(dataset, key, allowed))
        if key in out:
            raise ConfigError(f"dataset {dataset!r}: option {key!r} given twice")
        out[key] = _parse_value(raw.strip())
    return out


def _parse_value(raw: str) -> Any:
    low = raw.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for conv in (int, float):
        try:
            return conv(raw)
        except ValueError:
            pass
    return raw


def _int_option(
    dataset: str, opt: str, value: Any, minimum: int, maximum: int | None = None
) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if ok and value >= minimum and (maximum is None or value <= maximum):
        return int(value)
    bound = f"≥ {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    raise ConfigError(
        f"dataset {dataset!r}: option {opt!r} must be an integer {bound}; got {value!r}"
    )


def _bool_option(dataset: str, opt: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"dataset {dataset!r}: option {opt!r} must be true or false; got {value!r}")


# ---------------------------------------------------------------------------------------------
# Synthetic data (also used by dau.data.formats)
# ---------------------------------------------------------------------------------------------


def synthetic_arrays(
    *, num_classes: int, channels: int, size: int, n_train: int, n_test: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded images with learnable class structure: ``(x_train, y_train, x_test, y_test)``.

    Each class has a smooth random prototype (a 4×4 per-channel grid of normal values,
    bilinearly upsampled to ``size``×``size``). A sample is its class prototype with a random
    contrast, circularly shifted by up to ``size // 8`` pixels, plus a brightness offset and
    pixel noise, on a grey background; images are ``uint8 [N, C, size, size]`` and labels
    ``int64 [N]``, balanced over the classes in random order. The prototypes, the training
    set and the test set come from independent streams spawned from ``seed`` (NumPy's
    ``SeedSequence``/PCG64), so the test set does not depend on ``n_train``.
    """
    seq = np.random.SeedSequence(seed)
    proto_rng, train_rng, test_rng = (np.random.default_rng(s) for s in seq.spawn(3))
    grid = min(4, size)
    coarse = proto_rng.standard_normal((num_classes, channels, grid, grid))
    protos = torch.nn.functional.interpolate(
        torch.from_numpy(coarse), size=(size, size), mode="bilinear", align_corners=False
    ).numpy()
    protos -= protos.mean(axis=(1, 2, 3), keepdims=True)
    protos /= protos.std(axis=(1, 2, 3), keepdims=True) + 1e-8

    def sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.permutation(np.arange(n, dtype=np.int64) % num_classes)
        shift = size // 8
        dy = rng.integers(-shift, shift + 1, size=n)
        dx = rng.integers(-shift, shift + 1, size=n)
        contrast = rng.uniform(0.75, 1.25, size=(n, 1, 1, 1))
        brightness = rng.normal(0.0, 12.0, size=(n, 1, 1, 1))
        noise = rng.normal(0.0, 40.0, size=(n, channels, size, size))
        rows = (np.arange(size)[None, :] - dy[:, None]) % size  # [n, size]
        cols = (np.arange(size)[None, :] - dx[:, None]) % size
        chosen = protos[labels]  # [n, C, H, W]
        shifted = chosen[np.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
        shifted = shifted.transpose(0, 3, 1, 2)  # advanced indexing put C last
        x = 128.0 + 50.0 * contrast * shifted + brightness + noise
        return np.clip(np.rint(x), 0, 255).astype(np.uint8), labels

    x_train, y_train = sample(train_rng, n_train)
    x_test, y_test = sample(test_rng, n_test)
    return x_train, y_train, x_test, y_test


@register_dataset("synthetic")
def _load_synthetic(
    *,
    data_dir: Path | None,
    download: bool | None,
    num_classes: int = 10,
    channels: int = 3,
    size: int = 32,
    train: int = 2000,
    test: int = 500,
    seed: int = 0,
) -> Dataset:
    name = "synthetic"
    num_classes = _int_option(name, "num_classes", num_classes, 2, 10_000)
    channels = _int_option(name, "channels", channels, 1, 64)
    size = _int_option(name, "size", size, 2, 1024)
    train = _int_option(name, "train", train, 1)
    test = _int_option(name, "test", test, 0)
    seed = _int_option(name, "seed", seed, 0, 2**63 - 1)
    x_tr, y_tr, x_te, y_te = synthetic_arrays(
        num_classes=num_classes, channels=channels, size=size, n_train=train, n_test=test,
        seed=seed,
    )
    train_data = ImageData(torch.from_numpy(x_tr), torch.from_numpy(y_tr))
    mean, std = _channel_stats(train_data.images)
    info = DatasetInfo(
        name=name, num_classes=num_classes, channels=channels, height=size, width=size,
        mean=mean, std=std, class_names=tuple(f"class_{i}" for i in range(num_classes)),
        hflip=False, crop_padding=size // 8,
        source=(f"synthetic(num_classes={num_classes}, channels={channels}, size={size}, "
                f"train={train}, test={test}, seed={seed})"),
    )
    return Dataset(info, train_data, ImageData(torch.from_numpy(x_te), torch.from_numpy(y_te)))


# ---------------------------------------------------------------------------------------------
# scikit-learn digits
# ---------------------------------------------------------------------------------------------


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Ascending train and test positions, ``round(test_fraction * count)`` of each class in test.

    Classes are visited in ascending order with one ``numpy.random.RandomState(seed)``; the
    test positions of a class are the first ones of ``rng.permutation(count)``.
    """
    rng = np.random.RandomState(seed)
    test_parts = []
    for cls in np.unique(labels):
        where = np.flatnonzero(labels == cls)
        k = round(test_fraction * len(where))
        test_parts.append(where[rng.permutation(len(where))[:k]])
    test = np.sort(np.concatenate(test_parts)) if test_parts else np.zeros(0, np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[test] = False
    return np.flatnonzero(mask), test


@register_dataset("digits")
def _load_digits(
    *, data_dir: Path | None, download: bool | None, test_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    from sklearn.datasets import load_digits

    name = "digits"
    if (not isinstance(test_fraction, (int, float)) or isinstance(test_fraction, bool)
            or not 0.0 < float(test_fraction) < 1.0):
        raise ConfigError(
            f"dataset 'digits': option 'test_fraction' must be a number in (0, 1); "
            f"got {test_fraction!r}"
        )
    seed = _int_option(name, "seed", seed, 0, 2**32 - 1)
    bunch = load_digits()
    values = np.asarray(bunch.images, dtype=np.float64)  # [1797, 8, 8], 0..16
    images = np.clip(np.rint(values * (255.0 / 16.0)), 0, 255).astype(np.uint8)[:, None]
    labels = np.asarray(bunch.target, dtype=np.int64)
    train_idx, test_idx = stratified_split(labels, float(test_fraction), seed)
    train = ImageData(torch.from_numpy(images[train_idx]), torch.from_numpy(labels[train_idx]))
    test = ImageData(torch.from_numpy(images[test_idx]), torch.from_numpy(labels[test_idx]))
    mean, std = _channel_stats(train.images)
    info = DatasetInfo(
        name=name, num_classes=10, channels=1, height=8, width=8, mean=mean, std=std,
        class_names=tuple(str(i) for i in range(10)), hflip=False, crop_padding=1,
        source=f"sklearn.datasets.load_digits (test_fraction={test_fraction}, seed={seed})",
    )
    return Dataset(info, train, test)


# ---------------------------------------------------------------------------------------------
# File-backed datasets: finding the files
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """One way the files may be arranged under a root."""

    label: str  # e.g. "torchvision layout"
    subdir: str  # relative directory holding the files ("" = the root itself)


@dataclass(frozen=True)
class _Spec:
    """The fixed facts of a file-backed dataset."""

    name: str
    title: str
    num_classes: int
    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    hflip: bool
    crop_padding: int
    layouts: tuple[_Layout, ...]
    official_counts: tuple[int, int]  # (train, test) of the official release


@dataclass(frozen=True)
class _Found:
    directory: Path
    files: dict[str, Path]  # logical name -> actual path
    place: str


def _places(name: str, data_dir: Path | None) -> list[tuple[str, Path]]:
    """Where to look, in order, as (description, directory); duplicates removed."""
    raw: list[tuple[str, Path]] = []
    env = os.environ.get("DAU_DATA")

    def both(label: str, root: Path) -> None:
        raw.append((label, root))
        raw.append((label, root / name))

    if data_dir is not None:
        both("data_dir", data_dir)
    if env:
        both("DAU_DATA", Path(env).expanduser())
    raw.append(("Debian dataset path", DEBIAN_DATA_ROOT / name))
    both("download cache", default_cache_dir())
    seen: set[str] = set()
    places = []
    for label, path in raw:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            places.append((label, path))
    return places


def _locate(root: Path, spec: _Spec, files: Mapping[str, tuple[str, ...]]) -> _Found | str:
    """Find every file of ``files`` (logical name -> accepted file names) under ``root``.

    Returns the match of the first complete layout, or a description of what is missing.
    """
    if not root.is_dir():
        return "does not exist" if not root.exists() else "is not a directory"
    problems = []
    for layout in spec.layouts:
        directory = root / layout.subdir if layout.subdir else root
        where = f"{layout.subdir}/" if layout.subdir else "the directory itself"
        if not directory.is_dir():
            problems.append(f"{layout.label}: no {where}")
            continue
        found: dict[str, Path] = {}
        missing = []
        for logical, names in files.items():
            hit = next((directory / n for n in names if (directory / n).is_file()), None)
            if hit is None:
                missing.append(names[0] if len(names) == 1 else f"{names[0]}[.gz]")
            else:
                found[logical] = hit
        if not missing:
            return _Found(directory, found, "")
        if len(missing) == len(files) and not layout.subdir:
            problems.append(f"{layout.label}: none of the {spec.title} files in it")
        else:
            problems.append(f"{layout.label}: {where} lacks {', '.join(missing)}")
    return "; ".join(problems)


def _find_or_download(
    spec: _Spec,
    data_dir: Path | None,
    download: bool | None,
    files: Mapping[str, tuple[str, ...]],
    downloader: Callable[[Path], None],
    how_to: str,
) -> _Found:
    tried: list[str] = []
    for label, root in _places(spec.name, data_dir):
        result = _locate(root, spec, files)
        if isinstance(result, _Found):
            log.info("%s: reading %s (found via %s)", spec.name, result.directory, label)
            return dataclasses.replace(result, place=label)
        tried.append(f"  - {label} {root}: {result}")
    if download is False:
        tried.append("  - download: not attempted (download=False)")
    else:
        env = os.environ.get("DAU_DATA")
        target = data_dir or (Path(env).expanduser() if env else None) or default_cache_dir()
        log.warning("%s: not found locally; downloading it into %s", spec.name, target)
        created = next((p for p in reversed([target, *target.parents]) if not p.exists()), None)
        try:
            target.mkdir(parents=True, exist_ok=True)
            downloader(target)
        except Exception as exc:  # network, disk, checksum: report them all the same way
            if created is not None:  # leave nothing behind that this attempt made
                shutil.rmtree(created, ignore_errors=True)
            tried.append(f"  - download into {target}: failed ({type(exc).__name__}: {exc})")
        else:
            result = _locate(target, spec, files)
            if isinstance(result, _Found):
                return dataclasses.replace(result, place="download")
            tried.append(f"  - download into {target}: finished, but then {result}")
    raise DataError(
        f"cannot find dataset {spec.name!r} ({spec.title}). Looked in:\n"
        + "\n".join(tried)
        + f"\nTo fix: {how_to}"
    )


def _official_release(
    spec: _Spec, counts: tuple[int, int], checks: list[tuple[Path, str | None]], verify: bool
) -> None:
    """Verify MD5s when the data has the official counts (see the module docstring)."""
    if counts != spec.official_counts:
        log.info(
            "%s: %d train / %d test images, not the official %d / %d; loaded as a custom "
            "dataset in %s format (checksums not checked)",
            spec.name, counts[0], counts[1], *spec.official_counts, spec.title,
        )
        return
    if not verify:
        log.info("%s: checksums not verified (verify=False)", spec.name)
        return
    for path, md5 in checks:
        if md5 is not None:
            _verify_md5(spec, path, md5)
    log.info("%s: official checksums verified", spec.name)


def _verify_md5(spec: _Spec, path: Path, md5: str) -> None:
    from torchvision.datasets.utils import check_md5

    if not check_md5(path, md5):
        raise DataError(
            f"{path}: does not match the official {spec.title} checksum (md5 {md5}); the "
            "file is corrupt or modified. Delete it and download the dataset again, or "
            f"pass verify=False (e.g. '{spec.name}:verify=false') to load it anyway"
        )


def _check_arrays(
    spec: _Spec, part: str, images: np.ndarray, labels: np.ndarray, source: Path
) -> ImageData:
    want = (spec.channels, spec.size, spec.size)
    if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != want:
        raise DataError(
            f"{source}: {part} images should be uint8 [N, {want[0]}, {want[1]}, {want[2]}]; "
            f"got {images.dtype} {images.shape}"
        )
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != images.shape[0]:
        raise DataError(
            f"{source}: {images.shape[0]} {part} images but {labels.shape[0]} labels"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise DataError(
            f"{source}: {part} labels should lie in [0, {spec.num_classes}); found values "
            f"from {labels.min()} to {labels.max()}"
        )
    return ImageData(
        torch.from_numpy(np.ascontiguousarray(images)),
        torch.from_numpy(labels.astype(np.int64, copy=False)),
    )


def _make_dataset(
    spec: _Spec, found: _Found, train: ImageData, test: ImageData,
    class_names: Sequence[str] | None = None,
) -> Dataset:
    names = tuple(str(c) for c in class_names) if class_names is not None else spec.class_names
    if len(names) != spec.num_classes:
        raise DataError(
            f"{found.directory}: {len(names)} class names in the metadata, expected "
            f"{spec.num_classes}"
        )
    info = DatasetInfo(
        name=spec.name, num_classes=spec.num_classes, channels=spec.channels,
        height=spec.size, width=spec.size, mean=spec.mean, std=spec.std, class_names=names,
        hflip=spec.hflip, crop_padding=spec.crop_padding, source=str(found.directory),
    )
    return Dataset(info, train, test)


# ---------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100
# ---------------------------------------------------------------------------------------------

_CIFAR_LAYOUTS = {
    "cifar10": "cifar-10-batches-py",
    "cifar100": "cifar-100-python",
}

_CIFAR10 = _Spec(
    name="cifar10", title="CIFAR-10", num_classes=10, channels=3, size=32,
    mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"),
    hflip=True, crop_padding=4,
    layouts=(_Layout("torchvision layout", "cifar-10-batches-py"), _Layout("flat layout", "")),
    official_counts=(50_000, 10_000),
)
_CIFAR100 = _Spec(
    name="cifar100", title="CIFAR-100", num_classes=100, channels=3, size=32,
    mean=(0.5071, 0.4866, 0.4409), std=(0.2673, 0.2564, 0.2762),
    class_names=(),  # read from the meta file
    hflip=True, crop_padding=4,
    layouts=(_Layout("torchvision layout", "cifar-100-python"), _Layout("flat layout", "")),
    official_counts=(50_000, 10_000),
)


def _cifar_reader(base: Any) -> Any:
    """A subclass of torchvision's CIFAR class reading from the files' own directory.

    Its integrity check only requires the files to exist (MD5s are checked separately, see
    the module docstring); everything else, the unpickling included, is torchvision's.
    """

    class Reader(base):
        base_folder = ""
        meta: ClassVar[dict[str, str | None]] = {**base.meta, "md5": None}

        def _check_integrity(self) -> bool:
            return all(
                os.path.isfile(os.path.join(self.root, name))
                for name, _ in self.train_list + self.test_list
            )

    Reader.__name__ = Reader.__qualname__ = f"Unverified{base.__name__}"
    return Reader


def _diagnose_pickle(path: Path, label_key: str | None, meta_key: str | None) -> str | None:
    """Why one CIFAR pickle is unreadable, or None if it looks fine.

    ``label_key`` is given for a data batch, ``meta_key`` for the meta file.
    """
    try:
        with open(path, "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
    except Exception as exc:
        return f"cannot be unpickled ({type(exc).__name__}: {exc}); it is truncated or corrupt"
    if not isinstance(entry, dict):
        return f"holds a {type(entry).__name__}, expected a dict"
    if meta_key is not None:
        return None if meta_key in entry else f"has no {meta_key!r} entry"
    data = entry.get("data")
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        return f"'data' should be an array [N, 3072]; got {_describe(data)}"
    labels = entry.get(label_key) if label_key is not None else None
    if labels is None or len(labels) != data.shape[0]:
        return f"{data.shape[0]} images but {label_key!r} is {_describe(labels)}"
    return None


def _load_cifar(spec: _Spec, data_dir: Path | None, download: bool | None, verify: bool) -> Dataset:
    from torchvision.datasets import CIFAR10, CIFAR100

    verify = _bool_option(spec.name, "verify", verify)
    tv_cls: Any = CIFAR10 if spec.name == "cifar10" else CIFAR100
    file_names = [n for n, _ in tv_cls.train_list + tv_cls.test_list] + [tv_cls.meta["filename"]]
    files = {n: (n,) for n in file_names}
    subdir = _CIFAR_LAYOUTS[spec.name]

    def downloader(target: Path) -> None:
        tv_cls(root=str(target), train=True, download=True)

    found = _find_or_download(
        spec, data_dir, download, files, downloader,
        how_to=(f"pass data_dir (--data-dir DIR) for a DIR containing {subdir}/ (or the files "
                f"{', '.join(file_names)} directly), or set DAU_DATA=DIR, or allow a download "
                "(download=True) on a machine with network access"),
    )
    reader = _cifar_reader(tv_cls)
    label_key = "labels" if spec.name == "cifar10" else "fine_labels"
    parts = {}
    for part, train in (("train", True), ("test", False)):
        try:
            ds = reader(root=str(found.directory), train=train, download=False)
        except Exception as exc:
            names = [n for n, _ in (tv_cls.train_list if train else tv_cls.test_list)]
            for fname in names:
                why = _diagnose_pickle(found.files[fname], label_key, None)
                if why is not None:
                    raise DataError(f"{found.files[fname]}: {why}") from None
            meta_name = tv_cls.meta["filename"]
            why = _diagnose_pickle(found.files[meta_name], None, tv_cls.meta["key"])
            if why is not None:
                raise DataError(f"{found.files[meta_name]}: {why}") from None
            raise DataError(
                f"{found.directory}: cannot read the {spec.title} {part} set "
                f"({type(exc).__name__}: {exc})"
            ) from None
        images = np.asarray(ds.data).transpose(0, 3, 1, 2)  # torchvision gives N, H, W, C
        parts[part] = (_check_arrays(spec, part, images, np.asarray(ds.targets), found.directory),
                       ds.classes)
    train_data, classes = parts["train"]
    test_data = parts["test"][0]
    checks = [(found.files[n], md5) for n, md5 in tv_cls.train_list + tv_cls.test_list]
    checks.append((found.files[tv_cls.meta["filename"]], tv_cls.meta["md5"]))
    _official_release(spec, (len(train_data), len(test_data)), checks, verify)
    return _make_dataset(spec, found, train_data, test_data, classes)


@register_dataset("cifar10")
def _load_cifar10(*, data_dir: Path | None, download: bool | None, verify: bool = True) -> Dataset:
    return _load_cifar(_CIFAR10, data_dir, download, verify)


@register_dataset("cifar100")
def _load_cifar100(*, data_dir: Path | None, download: bool | None, verify: bool = True) -> Dataset:
    return _load_cifar(_CIFAR100, data_dir, download, verify)


# ---------------------------------------------------------------------------------------------
# SVHN
# ---------------------------------------------------------------------------------------------

_SVHN = _Spec(
    name="svhn", title="SVHN", num_classes=10, channels=3, size=32,
    mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970),
    class_names=tuple(str(i) for i in range(10)), hflip=False, crop_padding=4,
    layouts=(_Layout("torchvision layout", ""),),
    official_counts=(73_257, 26_032),
)
_SVHN_EXTRA_COUNT = 531_131


def _svhn_reader(base: Any) -> Any:
    """torchvision's SVHN class with an integrity check that only requires the file."""

    class Reader(base):
        def _check_integrity(self) -> bool:
            return os.path.isfile(os.path.join(self.root, self.filename))

    Reader.__name__ = Reader.__qualname__ = "UnverifiedSVHN"
    return Reader


@register_dataset("svhn")
def _load_svhn(
    *, data_dir: Path | None, download: bool | None, extra: bool = False, verify: bool = True
) -> Dataset:
    from torchvision.datasets import SVHN

    spec = _SVHN
    extra = _bool_option(spec.name, "extra", extra)
    verify = _bool_option(spec.name, "verify", verify)
    splits = ["train", "test", *(["extra"] if extra else [])]
    files = {s: (SVHN.split_list[s][1],) for s in splits}

    def downloader(target: Path) -> None:
        for s in splits:
            SVHN(root=str(target), split=s, download=True)

    found = _find_or_download(
        spec, data_dir, download, files, downloader,
        how_to=("pass data_dir (--data-dir DIR) for a DIR containing "
                f"{', '.join(f[0] for f in files.values())}, or set DAU_DATA=DIR, or allow a "
                "download (download=True) on a machine with network access"),
    )
    reader = _svhn_reader(SVHN)
    loaded = {}
    for s in splits:
        path = found.files[s]
        try:
            ds = reader(root=str(found.directory), split=s, download=False)
        except Exception as exc:
            raise DataError(
                f"{path}: cannot be read as an SVHN .mat file ({type(exc).__name__}: {exc}); it "
                "is truncated or corrupt"
            ) from None
        loaded[s] = _check_arrays(spec, s, np.asarray(ds.data), np.asarray(ds.labels), path)
    train, test = loaded["train"], loaded["test"]
    checks = [(found.files[s], SVHN.split_list[s][2]) for s in ("train", "test")]
    _official_release(spec, (len(train), len(test)), checks, verify)
    if extra:
        more = loaded["extra"]
        if verify and len(more) == _SVHN_EXTRA_COUNT:
            _verify_md5(spec, found.files["extra"], SVHN.split_list["extra"][2])
        train = ImageData(torch.cat([train.images, more.images]),
                          torch.cat([train.labels, more.labels]))
    return _make_dataset(spec, found, train, test)


# ---------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST (idx files, optionally gzip-compressed)
# ---------------------------------------------------------------------------------------------

_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

_MNIST = _Spec(
    name="mnist", title="MNIST", num_classes=10, channels=1, size=28,
    mean=(0.1307,), std=(0.3081,), class_names=tuple(str(i) for i in range(10)),
    hflip=False, crop_padding=2,
    layouts=(_Layout("torchvision layout", "MNIST/raw"), _Layout("flat layout", "")),
    official_counts=(60_000, 10_000),
)
_FASHION_MNIST = _Spec(
    name="fashion-mnist", title="Fashion-MNIST", num_classes=10, channels=1, size=28,
    mean=(0.2860,), std=(0.3530,),
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"),
    hflip=True, crop_padding=2,
    layouts=(_Layout("torchvision layout", "FashionMNIST/raw"), _Layout("flat layout", "")),
    official_counts=(60_000, 10_000),
)


def _read_idx(path: Path, kind: str, scratch: Path) -> torch.Tensor:
    """Read one idx file with torchvision's reader, decompressing ``.gz`` into ``scratch``."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    source = path
    try:
        if path.suffix == ".gz":
            source = scratch / path.stem
            with gzip.open(path, "rb") as src, open(source, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        result = read_image_file(str(source)) if kind == "images" else read_label_file(str(source))
        _check_idx_length(source, result)
    except (OSError, EOFError, zlib.error, AssertionError, RuntimeError, ValueError, TypeError,
            KeyError, IndexError) as exc:
        detail = str(exc) or type(exc).__name__
        raise DataError(
            f"{path}: cannot be read as an idx {kind} file ({detail}); it is truncated or "
            "corrupt"
        ) from None
    finally:
        if source != path:
            source.unlink(missing_ok=True)
    return result


def _check_idx_length(path: Path, tensor: torch.Tensor) -> None:
    """Require the exact file size (torchvision's readers read ``uint8`` idx files only)."""
    expected = 4 * (1 + tensor.dim()) + tensor.numel()
    size = path.stat().st_size
    if size != expected:
        raise ValueError(
            f"{size} bytes, but its header {tuple(tensor.shape)} needs {expected}"
        )


def _load_mnist_family(spec: _Spec, data_dir: Path | None, download: bool | None) -> Dataset:
    from torchvision.datasets import MNIST, FashionMNIST

    tv_cls: Any = MNIST if spec.name == "mnist" else FashionMNIST
    files = {k: (v, v + ".gz") for k, v in _MNIST_FILES.items()}

    def downloader(target: Path) -> None:
        tv_cls(root=str(target), train=True, download=True)

    found = _find_or_download(
        spec, data_dir, download, files, downloader,
        how_to=(f"pass data_dir (--data-dir DIR) for a DIR containing {spec.layouts[0].subdir}/ "
                f"or the four idx files ({', '.join(_MNIST_FILES.values())}, each optionally "
                "gzip-compressed) directly, or set DAU_DATA=DIR, or allow a download "
                "(download=True) on a machine with network access"),
    )
    parts = {}
    with tempfile.TemporaryDirectory(prefix="dau-idx-") as tmp:
        for part in ("train", "test"):
            img_path = found.files[f"{part}_images"]
            lab_path = found.files[f"{part}_labels"]
            images = _read_idx(img_path, "images", Path(tmp))
            labels = _read_idx(lab_path, "labels", Path(tmp))
            if images.shape[0] != labels.shape[0]:
                raise DataError(
                    f"{img_path} holds {images.shape[0]} images but {lab_path} holds "
                    f"{labels.shape[0]} labels; the files do not belong together"
                )
            parts[part] = _check_arrays(
                spec, part, images.numpy()[:, None], labels.numpy(), img_path
            )
    train, test = parts["train"], parts["test"]
    if (len(train), len(test)) != spec.official_counts:
        log.info("%s: %d train / %d test images (custom data in %s format)",
                 spec.name, len(train), len(test), spec.title)
    return _make_dataset(spec, found, train, test)


@register_dataset("mnist")
def _load_mnist(*, data_dir: Path | None, download: bool | None) -> Dataset:
    return _load_mnist_family(_MNIST, data_dir, download)


@register_dataset("fashion-mnist")
def _load_fashion_mnist(*, data_dir: Path | None, download: bool | None) -> Dataset:
    return _load_mnist_family(_FASHION_MNIST, data_dir, download)
