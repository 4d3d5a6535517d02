"""Sample fingerprints: one content hash per sample, computed in Rust on every core.

The algorithm (``blake3-128``, see ``dau._native``): the first 16 bytes of the BLAKE3 hash of
the sample's raw bytes, written as 32 lowercase hex digits. The bytes are the sample's uint8
pixels as dau holds them, channels first and rows in order (``C × H × W``, row-major). The
label is not hashed: a deletion request names images, not labels. For CIFAR these bytes are
the 3072-byte row stored in the pickled batch, for MNIST-style idx files the image record,
so anyone can check a fingerprint with ``b3sum --length 16``. An image file (PNG, BMP, …) is
decoded to the dataset's channels (``L`` or ``RGB``) and hashed the same way, so a lossless
export of a sample has the sample's fingerprint.

The dataset digest (64 hex digits) is the BLAKE3 hash of a fixed prefix, the sample count and
all fingerprints in position order: it changes when any sample changes or moves.

A dataset's fingerprints (:func:`dataset_fingerprints`) are computed once per dataset object.

Fingerprint files (``dau fingerprint``) hold one fingerprint per line in position order after
``#`` header lines; any list of fingerprints in that syntax is a ``fingerprints:FILE`` request.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from dau import _native
from dau._atomic import atomic_write
from dau.errors import RequestError

__all__ = [
    "ALGORITHM",
    "DatasetFingerprints",
    "dataset_fingerprints",
    "digest",
    "fingerprint_image_file",
    "fingerprint_images",
    "from_hex",
    "part_fingerprints",
    "read_fingerprint_file",
    "to_hex",
    "write_fingerprint_file",
]

ALGORITHM: str = _native.FINGERPRINT_ALGORITHM
LAYOUT = "uint8 pixels, C x H x W row-major; label not hashed"

Fingerprints = npt.NDArray[np.uint8]


def fingerprint_images(images: torch.Tensor | np.ndarray, threads: int | None = None) -> Fingerprints:
    """Fingerprints ``[N, 16]`` of uint8 images ``[N, C, H, W]`` (a tensor on any device, or a
    NumPy array), hashed in parallel with the GIL released."""
    if isinstance(images, torch.Tensor):
        images = images.detach().to("cpu").contiguous().numpy()
    return _native.fingerprint_samples(images, threads)


@dataclass(frozen=True, eq=False)
class DatasetFingerprints:
    """The fingerprints ``[N, 16]`` of a dataset's train and test samples."""

    train: np.ndarray
    test: np.ndarray


_CACHE: weakref.WeakKeyDictionary[Any, DatasetFingerprints] = weakref.WeakKeyDictionary()


def part_fingerprints(part: Any, threads: int | None = None) -> Fingerprints:
    """The fingerprints of a dataset part: its in-memory images, or a streamed part's
    decoded pixels (read once, batch by batch)."""
    images = getattr(part, "images", None)
    return fingerprint_images(images, threads) if images is not None else part.fingerprints()


def dataset_fingerprints(dataset: Any) -> DatasetFingerprints:
    """The fingerprints of a :class:`~dau.data.types.Dataset` (computed once per object)."""
    found = _CACHE.get(dataset)
    if found is None:
        found = DatasetFingerprints(part_fingerprints(dataset.train),
                                    part_fingerprints(dataset.test))
        _CACHE[dataset] = found
    return found


def digest(fingerprints: Fingerprints) -> str:
    """The digest of fingerprints in position order (64 hex digits)."""
    return _native.fingerprint_digest(np.ascontiguousarray(fingerprints))


def to_hex(fingerprints: Fingerprints) -> list[str]:
    """Each fingerprint as 32 lowercase hex digits."""
    return _native.fingerprints_to_hex(np.ascontiguousarray(fingerprints))


def from_hex(strings: Iterable[str], *, what: str = "fingerprint") -> Fingerprints:
    """Fingerprints ``[M, 16]`` from hex strings; :class:`RequestError` naming a bad one."""
    rows = []
    for s in strings:
        text = str(s).strip()
        try:
            raw = bytes.fromhex(text) if len(text) == 32 else b""
        except ValueError:
            raw = b""
        if len(raw) != 16:
            raise RequestError(f"{what} {text[:80]!r} is not a fingerprint; expected 32 hex digits")
        rows.append(np.frombuffer(raw, dtype=np.uint8))
    return np.stack(rows) if rows else np.zeros((0, 16), dtype=np.uint8)


def write_fingerprint_file(
    path: str | os.PathLike[str], fingerprints: Fingerprints, header: dict[str, Any]
) -> Path:
    """Write one fingerprint per line (line order = position order) after ``# key: value``
    header lines, atomically."""
    target = Path(path)
    lines = [f"# dau fingerprints ({ALGORITHM}: {LAYOUT}); one per sample, in position order"]
    lines += [f"# {k}: {v}" for k, v in header.items()]
    lines += to_hex(fingerprints)
    with atomic_write(target, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
        fh.write("\n")
    return target


def read_fingerprint_file(path: str | os.PathLike[str]) -> tuple[Fingerprints, npt.NDArray[np.int64]]:
    """The fingerprints of a file in file order and the 1-based line of each;
    :class:`RequestError` with the line of a malformed entry."""
    return _native.read_fingerprints(os.fspath(path))


def fingerprint_image_file(path: str | os.PathLike[str], shape: tuple[int, int, int]) -> np.ndarray:
    """The fingerprint ``[16]`` of an image file decoded to ``shape`` = (C, H, W) uint8.

    Raises :class:`RequestError` when the file cannot be decoded or has another size.
    """
    from PIL import Image, UnidentifiedImageError  # here: only image-file requests need PIL

    channels, height, width = shape
    try:
        with Image.open(path) as image:
            decoded = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise RequestError(f"{str(path)!r} is not a readable image ({exc})") from None
    if decoded.shape[:2] != (height, width):
        raise RequestError(
            f"{str(path)!r} is {decoded.shape[1]}x{decoded.shape[0]} pixels; the dataset's "
            f"images are {width}x{height}"
        )
    chw = decoded[None] if decoded.ndim == 2 else decoded.transpose(2, 0, 1)
    return fingerprint_images(np.ascontiguousarray(chw)[None])[0]
