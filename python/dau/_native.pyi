"""dau._native: split planning, deterministic samplers and split manifests (Rust).

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
"""

from typing import Final, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_VAL_FRACTION",
    "MANIFEST_SCHEMA_VERSION",
    "MAX_CLASSES",
    "SPLIT_ALGORITHM_VERSION",
    "SplitPlan",
    "__version__",
    "permutation",
    "plan_split",
    "with_replacement",
]

__version__: Final[str]
SPLIT_ALGORITHM_VERSION: Final[int]
MANIFEST_SCHEMA_VERSION: Final[int]
DEFAULT_VAL_FRACTION: Final[float]
MAX_CLASSES: Final[int]

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
