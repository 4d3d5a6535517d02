"""The file-backed datasets: ``cifar10``, ``cifar100``, ``svhn``, ``mnist``, ``fashion-mnist``.

They are read through torchvision's own readers from local files. The root is searched in
this order: the ``data_dir`` argument, the ``DAU_DATA`` environment variable, Debian's
``/usr/share/datasets/<name>/``, the download cache (``$XDG_CACHE_HOME/dau/data``, by
default ``~/.cache/dau/data``); each of the first, second and last is tried both as given and
with ``/<name>`` appended. Both torchvision's layout (``cifar-10-batches-py/``,
``cifar-100-python/``, ``MNIST/raw/``, ``FashionMNIST/raw/``, ``*_32x32.mat``) and a flat
layout with the raw files directly in the directory are accepted; MNIST idx files may be
gzip-compressed. When nothing is found and ``download`` is not ``False``, torchvision
downloads the data into ``data_dir``, else ``DAU_DATA``, else the cache.

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

torchvision is imported inside the functions that use it: it is slow to import and only
these readers need it.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import os
import pickle
import shutil
import tempfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from dau.data.registry import bool_option, register_dataset
from dau.data.types import Dataset, DatasetInfo, ImageData, describe
from dau.errors import DataError

__all__ = ["DEBIAN_DATA_ROOT", "default_cache_dir"]

log = logging.getLogger(__name__)

#: Where Debian's dataset packages install data (``/usr/share/datasets/<name>/``).
DEBIAN_DATA_ROOT = Path("/usr/share/datasets")


def default_cache_dir() -> Path:
    """The download cache: ``$XDG_CACHE_HOME/dau/data``, by default ``~/.cache/dau/data``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "dau" / "data"


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
        return f"'data' should be an array [N, 3072]; got {describe(data)}"
    labels = entry.get(label_key) if label_key is not None else None
    if labels is None or len(labels) != data.shape[0]:
        return f"{data.shape[0]} images but {label_key!r} is {describe(labels)}"
    return None


def _load_cifar(spec: _Spec, data_dir: Path | None, download: bool | None, verify: bool) -> Dataset:
    from torchvision.datasets import CIFAR10, CIFAR100

    verify = bool_option(spec.name, "verify", verify)
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
    extra = bool_option(spec.name, "extra", extra)
    verify = bool_option(spec.name, "verify", verify)
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
