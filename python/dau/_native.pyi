"""dau._native: split planning, deterministic samplers, split manifests and sample
fingerprints (Rust).

Errors (the classes of :mod:`dau.errors`):

* :class:`~dau.errors.SplitError`: a bad forget spec (unknown kind, malformed value,
  percentage outside (0, 100]), ``num_classes`` of 0 or above ``MAX_CLASSES``, an empty label
  array, a label outside ``[0, num_classes)`` (with its position), ``val_fraction`` outside
  ``[0, 1)``, a class out of range, a forget count above the training split, an ``indices:``
  file that cannot be read or holds a non-integer, out-of-range, duplicate or validation
  position (with its line), an empty forget set (unless ``none``), an empty retain set,
  an unknown set name, an invalid manifest, and a negative or too large ``seed``/
  ``num_classes``.
* :class:`~dau.errors.SplitMismatchError` (a ``SplitError``): a manifest whose index arrays
  do not hash to its stored fingerprint.
* :class:`~dau.errors.ConfigError`: sampler arguments (``n``/``k`` above 2**32, draws from an
  empty population, negative or too large integers).
* :class:`~dau.errors.RequestError` (a ``SplitError``): fingerprints that cannot be computed
  (a zero-byte sample, ``threads`` of 0), a fingerprint file that cannot be read, holds a
  token that is not 32 hex digits (with its line) or lists nothing; a request spec
  (``fingerprints:``/``ids:``/``files:``) given to ``plan_split`` is a ``SplitError``.
* ``TypeError``: an argument of the wrong type (not a NumPy array, not int64, not an int);
  ``ValueError``: an array that is not 1-D.

Randomness (algorithm version ``SPLIT_ALGORITHM_VERSION``): a stream ``(domain, index)`` has
the key ``mix64(mix64(mix64(seed) ^ domain) ^ index)`` (``mix64`` = the SplitMix64 finaliser);
four SplitMix64 outputs from that key seed xoshiro256**; bounded integers use Lemire's
unbiased multiply-and-reject. Domains: validation 1, forget 2, permutation 3 (index = stream,
e.g. the epoch), with-replacement 4 (index = stream).

Planning: for each class in ascending order, ``floor(val_fraction * count)`` of its ascending
positions are drawn into validation by partial Fisher-Yates (validation stream); train = the
rest; forget is drawn from train by the spec (``random``: partial Fisher-Yates over the
ascending train positions with the forget stream); retain = train - forget. All arrays are
ascending int64 positions into the full training set.

Fingerprint: hex SHA-256 of ``b"dau-split-v1\\n"`` followed, for val, train, forget, retain in
this order, by the set name in ASCII, a zero byte, the length as u64 little-endian, and each
position as u64 little-endian.

Sample fingerprints (``FINGERPRINT_ALGORITHM`` = ``blake3-128``): the first 16 bytes of the
BLAKE3 hash of a sample's raw bytes (for dau's images: the uint8 pixels in C, H, W order; the
label is not hashed), so ``b3sum --length 16`` of those bytes gives the same hex. The dataset
digest is the hex BLAKE3 of ``b"dau-fingerprints-v1\\n"``, the count as u64 little-endian and
the 16-byte fingerprints in position order. Hashing runs in parallel with the GIL released;
the result does not depend on the thread count.

Samplers per set and rank: ``set_stream(set, i) = (code << 48) | (i mod 2**48)`` with codes
val 1, train 2, forget 3, retain 4. ``permutation_shard``: the permutation of ``0..n``,
wrapped around to ``ceil(n / world_size) * world_size`` entries, rank ``r`` taking entries
``r, r + world_size, ...``. ``with_replacement_shard``: rank ``r`` takes draws
``r, r + world_size, ...`` of the with-replacement stream, ``k`` of them.
"""

import os
from typing import Final, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_VAL_FRACTION",
    "FINGERPRINT_ALGORITHM",
    "FINGERPRINT_LEN",
    "MANIFEST_SCHEMA_VERSION",
    "MAX_CLASSES",
    "SPLIT_ALGORITHM_VERSION",
    "SplitPlan",
    "__version__",
    "fingerprint_digest",
    "fingerprint_samples",
    "fingerprints_to_hex",
    "permutation",
    "permutation_shard",
    "plan_split",
    "plan_split_request",
    "read_fingerprints",
    "resolve_fingerprints",
    "set_stream",
    "with_replacement",
    "with_replacement_shard",
]

__version__: Final[str]
SPLIT_ALGORITHM_VERSION: Final[int]
MANIFEST_SCHEMA_VERSION: Final[int]
DEFAULT_VAL_FRACTION: Final[float]
MAX_CLASSES: Final[int]
FINGERPRINT_ALGORITHM: Final[str]
FINGERPRINT_LEN: Final[int]

@final
class SplitPlan:
    """A planned split: validation, train (= all - val), forget (subset of train) and
    retain (= train - forget) positions. Immutable; picklable (through its JSON manifest)."""

    @property
    def train(self) -> npt.NDArray[np.int64]:
        """Training-split positions, ascending; a new array each access."""

    @property
    def val(self) -> npt.NDArray[np.int64]:
        """Validation positions, ascending; a new array each access."""

    @property
    def forget(self) -> npt.NDArray[np.int64]:
        """Forget positions, ascending; a new array each access."""

    @property
    def retain(self) -> npt.NDArray[np.int64]:
        """Retain positions, ascending; a new array each access."""

    @property
    def spec(self) -> str:
        """The canonical forget spec (e.g. ``classes:3,5`` for ``classes:5,3,3``)."""

    @property
    def seed(self) -> int: ...
    @property
    def val_fraction(self) -> float: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def num_samples(self) -> int:
        """The size of the full training set."""

    @property
    def forgotten_classes(self) -> list[int]:
        """Classes forgotten entirely (``class``/``classes`` specs), ascending; else empty."""

    @property
    def fingerprint(self) -> str:
        """64 hex digits identifying the four index arrays (see the module docstring)."""

    def counts(self) -> dict[str, int]:
        """Sizes of ``val``, ``train``, ``forget`` and ``retain``."""

    def class_counts(self, set_name: str) -> npt.NDArray[np.int64]:
        """Per-class counts (length ``num_classes``) of ``val``, ``train``, ``forget`` or
        ``retain``; :class:`~dau.errors.SplitError` for another name."""

    def test_indices(
        self, test_labels: npt.NDArray[np.int64], drop_forgotten_classes: bool = True
    ) -> npt.NDArray[np.int64]:
        """Ascending test positions to evaluate on: all of them, or without the forgotten
        classes. ``test_labels`` must be a 1-D int64 array with values in
        ``[0, num_classes)`` (:class:`~dau.errors.SplitError` otherwise)."""

    def to_json(self) -> str:
        """The split manifest (JSON, schema ``MANIFEST_SCHEMA_VERSION``)."""

    @staticmethod
    def from_json(text: str) -> SplitPlan:
        """Read a manifest; :class:`~dau.errors.SplitMismatchError` if the arrays do not match
        the stored fingerprint, :class:`~dau.errors.SplitError` if it is not a valid one."""

    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[object, tuple[str]]: ...

def plan_split(
    labels: npt.NDArray[np.int64],
    num_classes: int,
    forget: str,
    seed: int,
    val_fraction: float = 0.1,
) -> SplitPlan:
    """Plan a split of a training set from its labels (1-D int64 array; read without a copy
    when C-contiguous; the GIL is released while planning).

    ``forget``: ``random:N``, ``random:P%`` (of the training split, floor), ``class:K``,
    ``classes:K1,K2``, ``indices:FILE`` (positions in the full training set; whitespace,
    comma or newline separated; ``#`` comments) or ``none``. ``seed``: 0 <= seed < 2**64.
    """

def permutation(n: int, seed: int, stream: int) -> npt.NDArray[np.int64]:
    """A random permutation of ``0..n`` (Fisher-Yates from the end over the identity) from
    the permutation stream ``stream`` (use the epoch, so a resumed run repeats the order)."""

def with_replacement(n: int, k: int, seed: int, stream: int) -> npt.NDArray[np.int64]:
    """``k`` uniform draws from ``0..n`` with replacement, from the with-replacement stream
    ``stream``."""

def permutation_shard(
    n: int, seed: int, stream: int, rank: int, world_size: int
) -> npt.NDArray[np.int64]:
    """Rank ``rank``'s ``ceil(n / world_size)`` entries of the permutation of ``0..n`` (see
    the module docstring); ``rank=0, world_size=1`` is :func:`permutation`."""

def with_replacement_shard(
    n: int, k: int, seed: int, stream: int, rank: int, world_size: int
) -> npt.NDArray[np.int64]:
    """Rank ``rank``'s ``k`` draws with replacement: draws ``rank, rank + world_size, ...``
    of the stream of :func:`with_replacement`."""

def set_stream(set_name: str, index: int) -> int:
    """The sampler stream of ``set_name`` (val, train, forget, retain) for ``index`` (an
    epoch or step): ``(code << 48) | (index mod 2**48)``."""

def fingerprint_samples(
    samples: npt.NDArray[np.uint8], threads: int | None = None
) -> npt.NDArray[np.uint8]:
    """Fingerprints ``[N, 16]`` of ``samples`` (uint8, shape ``[N, ...]``, each sample's bytes
    in C order; no copy when C-contiguous), hashed on ``threads`` threads (None: all cores)."""

def fingerprint_digest(fingerprints: npt.NDArray[np.uint8]) -> str:
    """The dataset digest (64 hex digits) of fingerprints ``[N, 16]`` in position order."""

def fingerprints_to_hex(fingerprints: npt.NDArray[np.uint8]) -> list[str]:
    """Each fingerprint of ``[N, 16]`` as 32 lowercase hex digits."""

def read_fingerprints(
    path: str | os.PathLike[str],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Read a fingerprint file (32 hex digits each, separated by whitespace, commas or
    newlines; ``#`` comments): the fingerprints ``[M, 16]`` in file order and the 1-based
    line of each."""

def resolve_fingerprints(
    dataset: npt.NDArray[np.uint8],
    request: npt.NDArray[np.uint8],
    threads: int | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Every ``(item, position)`` with ``request[item] == dataset[position]``, as two int64
    arrays sorted by item, then position. Items without a match do not appear."""

def plan_split_request(
    labels: npt.NDArray[np.int64],
    num_classes: int,
    forget: str,
    seed: int,
    positions: npt.NDArray[np.int64],
    val_fraction: float = 0.1,
) -> tuple[SplitPlan, npt.NDArray[np.int64]]:
    """Plan a split whose forget set is a resolved request (``forget`` =
    ``fingerprints:FILE``, ``ids:FILE`` or ``files:PATH``; ``positions`` = the matched
    positions in the full training set). Returns the plan (forget = matched positions in the
    training split) and the matched positions that lie in the validation split (never trained
    on), ascending."""
