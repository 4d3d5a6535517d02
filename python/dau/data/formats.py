"""Writers of small datasets in the true on-disk formats, for tests and demos.

Each writer creates files that the official readers accept byte for byte in kind: CIFAR
Python pickles (``cifar-10-batches-py/``, ``cifar-100-python/``), MNIST idx files (optionally
gzip-compressed) and SVHN MATLAB v5 ``.mat`` files. The images carry learnable class structure
(:func:`dau.data.builtin.synthetic_arrays`); the sample counts are whatever you ask for, so
the files never pass for the official release (whose MD5s they do not match).

Every writer returns the directory holding the files and is deterministic in ``seed``.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dau.data.builtin import synthetic_arrays

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR100_COARSE",
    "CIFAR100_FINE",
    "write_cifar10",
    "write_cifar100",
    "write_image_folder",
    "write_mnist",
    "write_svhn",
]

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)

# CIFAR-100 superclasses and their five classes each (the published table).
_CIFAR100_TABLE = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
#: The 100 fine class names in label order (alphabetical, as in the release's meta file).
CIFAR100_FINE = tuple(sorted(n for names in _CIFAR100_TABLE.values() for n in names))
#: The 20 coarse class names in label order.
CIFAR100_COARSE = tuple(sorted(_CIFAR100_TABLE))
_FINE_TO_COARSE = np.array(
    [
        CIFAR100_COARSE.index(next(c for c, names in _CIFAR100_TABLE.items() if fine in names))
        for fine in CIFAR100_FINE
    ],
    dtype=np.int64,
)

Layout = Literal["torchvision", "flat"]


def _check_counts(n_train: int, n_test: int) -> None:
    for arg, value in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{arg} must be a non-negative integer; got {value!r}")


def _target(root: str | os.PathLike[str], layout: Layout, subdir: str) -> Path:
    if layout not in ("torchvision", "flat"):
        raise ValueError(f"layout must be 'torchvision' or 'flat'; got {layout!r}")
    directory = Path(root) / subdir if layout == "torchvision" else Path(root)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _dump(path: Path, obj: Any) -> None:
    # Protocol 2 and str keys: what the release's Python 2 pickles give under encoding="latin1".
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def _rows(images: np.ndarray) -> np.ndarray:
    """[N, 3, 32, 32] -> [N, 3072]: the red plane, then green, then blue, each row-major."""
    return np.ascontiguousarray(images.reshape(images.shape[0], -1))


def write_cifar10(
    root: str | os.PathLike[str], n_train: int = 100, n_test: int = 50, seed: int = 0,
    *, layout: Layout = "torchvision",
) -> Path:
    """Write a small CIFAR-10 in the release format; returns the directory of the files.

    ``layout="torchvision"`` writes ``root/cifar-10-batches-py/``; ``"flat"`` writes the files
    (``data_batch_1`` … ``data_batch_5``, ``test_batch``, ``batches.meta``) into ``root``.
    The training images are spread over the five batches as evenly as possible.
    """
    _check_counts(n_train, n_test)
    directory = _target(root, layout, "cifar-10-batches-py")
    x_tr, y_tr, x_te, y_te = synthetic_arrays(
        num_classes=10, channels=3, size=32, n_train=n_train, n_test=n_test, seed=seed
    )
    bounds = np.linspace(0, n_train, 6).round().astype(int)
    for b in range(5):
        lo, hi = bounds[b], bounds[b + 1]
        _dump(directory / f"data_batch_{b + 1}", {
            "batch_label": f"training batch {b + 1} of 5",
            "labels": [int(v) for v in y_tr[lo:hi]],
            "data": _rows(x_tr[lo:hi]),
            "filenames": [f"synthetic_{i:06d}.png" for i in range(lo, hi)],
        })
    _dump(directory / "test_batch", {
        "batch_label": "testing batch 1 of 1",
        "labels": [int(v) for v in y_te],
        "data": _rows(x_te),
        "filenames": [f"synthetic_test_{i:06d}.png" for i in range(n_test)],
    })
    _dump(directory / "batches.meta", {
        "num_cases_per_batch": int(bounds[1] - bounds[0]),
        "label_names": list(CIFAR10_CLASSES),
        "num_vis": 3 * 32 * 32,
    })
    return directory


def write_cifar100(
    root: str | os.PathLike[str], n_train: int = 200, n_test: int = 100, seed: int = 0,
    *, layout: Layout = "torchvision",
) -> Path:
    """Write a small CIFAR-100 in the release format; returns the directory of the files.

    ``layout="torchvision"`` writes ``root/cifar-100-python/{train,test,meta}``; ``"flat"``
    writes them into ``root``. Entries hold ``fine_labels`` and the matching
    ``coarse_labels``; ``meta`` holds ``fine_label_names`` and ``coarse_label_names``.
    """
    _check_counts(n_train, n_test)
    directory = _target(root, layout, "cifar-100-python")
    x_tr, y_tr, x_te, y_te = synthetic_arrays(
        num_classes=100, channels=3, size=32, n_train=n_train, n_test=n_test, seed=seed
    )
    for name, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        _dump(directory / name, {
            "filenames": [f"synthetic_{name}_{i:06d}.png" for i in range(len(y))],
            "batch_label": f"{'training' if name == 'train' else 'testing'} batch 1 of 1",
            "fine_labels": [int(v) for v in y],
            "coarse_labels": [int(v) for v in _FINE_TO_COARSE[y]],
            "data": _rows(x),
        })
    _dump(directory / "meta", {
        "fine_label_names": list(CIFAR100_FINE),
        "coarse_label_names": list(CIFAR100_COARSE),
    })
    return directory


def _idx_bytes(array: np.ndarray) -> bytes:
    """An idx (SN3 / "Pascal Vincent") file of unsigned bytes: magic, big-endian dims, data."""
    if array.dtype != np.uint8:
        raise ValueError(f"idx writer expects uint8 data; got {array.dtype}")
    header = struct.pack(">I", 0x0800 | array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def write_mnist(
    root: str | os.PathLike[str], n_train: int = 100, n_test: int = 50, seed: int = 0,
    *, layout: Layout = "torchvision", gz: bool = True,
    name: Literal["mnist", "fashion-mnist"] = "mnist",
) -> Path:
    """Write MNIST-format idx files (28×28, 10 classes); returns the directory of the files.

    ``layout="torchvision"`` writes into ``root/MNIST/raw/`` (``root/FashionMNIST/raw/`` for
    ``name="fashion-mnist"``); ``"flat"`` writes the four files into ``root`` (Debian's
    layout). ``gz=True`` gzip-compresses them (``*.gz``), as distributed.
    """
    _check_counts(n_train, n_test)
    folders = {"mnist": "MNIST/raw", "fashion-mnist": "FashionMNIST/raw"}
    if name not in folders:
        raise ValueError(f"name must be 'mnist' or 'fashion-mnist'; got {name!r}")
    directory = _target(root, layout, folders[name])
    x_tr, y_tr, x_te, y_te = synthetic_arrays(
        num_classes=10, channels=1, size=28, n_train=n_train, n_test=n_test, seed=seed
    )
    contents = {
        "train-images-idx3-ubyte": x_tr[:, 0],
        "train-labels-idx1-ubyte": y_tr.astype(np.uint8),
        "t10k-images-idx3-ubyte": x_te[:, 0],
        "t10k-labels-idx1-ubyte": y_te.astype(np.uint8),
    }
    for fname, array in contents.items():
        data = _idx_bytes(array)
        if gz:
            # mtime=0 keeps the files byte-identical across runs.
            with open(directory / f"{fname}.gz", "wb") as raw, \
                    gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
                fh.write(data)
        else:
            (directory / fname).write_bytes(data)
    return directory


def write_svhn(
    root: str | os.PathLike[str], n_train: int = 100, n_test: int = 50, seed: int = 0,
    *, n_extra: int = 0,
) -> Path:
    """Write SVHN-format ``train_32x32.mat`` and ``test_32x32.mat`` into ``root``.

    As in the release, ``X`` is ``uint8 [32, 32, 3, N]`` and ``y`` is ``uint8 [N, 1]`` with
    label 10 for the digit 0. ``n_extra > 0`` also writes ``extra_32x32.mat``.
    """
    from scipy.io import savemat

    _check_counts(n_train, n_test)
    _check_counts(n_extra, 0)
    directory = Path(root)
    directory.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr, x_te, y_te = synthetic_arrays(
        num_classes=10, channels=3, size=32, n_train=n_train + n_extra, n_test=n_test,
        seed=seed,
    )
    parts = {"train": (x_tr[:n_train], y_tr[:n_train]), "test": (x_te, y_te)}
    if n_extra:
        parts["extra"] = (x_tr[n_train:], y_tr[n_train:])
    for split, (x, y) in parts.items():
        stored = np.where(y == 0, 10, y).astype(np.uint8).reshape(-1, 1)
        buffer = io.BytesIO()
        savemat(buffer, {"X": np.ascontiguousarray(x.transpose(2, 3, 1, 0)), "y": stored})
        # The MAT header's 116-byte text holds the time of writing: fixed here, so the same
        # arguments give the same bytes.
        data = bytearray(buffer.getvalue())
        data[:116] = b"MATLAB 5.0 MAT-file, written by dau.data.formats".ljust(116)
        (directory / f"{split}_32x32.mat").write_bytes(bytes(data))
    return directory


def write_image_folder(root: str | os.PathLike[str], dataset: Any, *,
                       parts: tuple[str, ...] = ("train", "test")) -> Path:
    """Write a :class:`~dau.data.Dataset` as an ``ImageFolder`` tree of lossless PNG files:
    ``root/<part>/<label>-<class name>/<position>.png``, label and position zero-padded so
    that the ``imagefolder`` source (which numbers the class folders in sorted order) reads
    the samples back in the same order, with the same labels and pixels (and so the same
    fingerprints and splits). ``root`` must not exist yet or be empty."""
    from PIL import Image  # Pillow: only needed here

    base = Path(root)
    if base.exists() and any(base.iterdir()):
        raise FileExistsError(f"write_image_folder: {str(base)!r} is not empty")
    digits = len(str(len(dataset.info.class_names) - 1))
    names = [f"{i:0{digits}d}-" + str(n).replace(os.sep, "_")
             for i, n in enumerate(dataset.info.class_names)]
    for part in parts:
        data = getattr(dataset, part)
        images = data.images if hasattr(data, "images") else data.materialize().images
        width = max(6, len(str(len(data))))
        for name in names:
            (base / part / name).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(images.numpy(), data.labels.tolist(),
                                               strict=True)):
            pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
            Image.fromarray(np.ascontiguousarray(pixels)).save(
                base / part / names[label] / f"{i:0{width}d}.png")
    return base
