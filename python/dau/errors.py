"""The exception hierarchy of dau.

Every error that a user can cause (bad arguments, missing data, a corrupt
checkpoint, a split that does not match) is a :class:`DauError`. The CLI turns
one into a one-line message and exit code 1; anything else is a bug.

The Rust module ``dau._native`` raises these same classes (it imports this
module), so ``except dau.errors.SplitError`` catches errors from both sides.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DauError",
    "KernelUnavailableError",
    "RequestError",
    "SplitError",
    "SplitMismatchError",
    "TrainingError",
]


class DauError(Exception):
    """Base class of every error dau raises on purpose."""


class ConfigError(DauError, ValueError):
    """An option, a config file or a combination of them is invalid."""


class DataError(DauError):
    """A dataset cannot be found, read or is not what it should be."""


class SplitError(DauError, ValueError):
    """A split cannot be planned: bad spec, class out of range, sets too large or empty."""


class SplitMismatchError(SplitError):
    """Two runs, or a run and a dataset, disagree about the split they use."""


class RequestError(SplitError):
    """A deletion request (fingerprints, external IDs, image files) or a fingerprint file
    cannot be read, or cannot be resolved against the dataset."""


class CheckpointError(DauError):
    """A run directory or checkpoint is missing, corrupt or does not match the model."""


class KernelUnavailableError(DauError, RuntimeError):
    """The compiled torch operator library (or one of its backends) is not available."""


class TrainingError(DauError, RuntimeError):
    """Training cannot go on (for example the loss became NaN or infinite)."""
