//! Errors of split planning, manifests and samplers.
//!
//! Each variant is one thing a user can get wrong; its message says what was expected and what
//! was given. The Python binding maps [`SplitError::FingerprintMismatch`] to
//! `dau.errors.SplitMismatchError`, every other [`SplitError`] to `dau.errors.SplitError`, and
//! [`SamplerError`] to `dau.errors.ConfigError` and [`FingerprintError`] to
//! `dau.errors.RequestError` (a `SplitError`).

use std::path::PathBuf;

/// The spec kinds, as listed in error messages.
pub const EXPECTED_SPECS: &str = "random:N, random:P%, class:K, classes:K1,K2, indices:FILE, \
     fingerprints:FILE, ids:FILE, files:PATH, none";

/// Why a split cannot be planned, or a manifest cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// The label array has no entries.
    #[error("the training label array is empty; a split needs at least one sample")]
    EmptyLabels,

    /// `num_classes` is 0.
    #[error("num_classes must be at least 1, got 0")]
    ZeroClasses,

    /// `num_classes` is beyond [`crate::MAX_CLASSES`].
    #[error("num_classes = {num_classes} is too large (at most {max})")]
    TooManyClasses {
        /// The value given.
        num_classes: u64,
        /// The largest accepted value.
        max: u64,
    },

    /// A label lies outside `[0, num_classes)`.
    #[error(
        "{what}: label {value} at position {position} is out of range; \
         labels must lie in [0, {num_classes}) for num_classes = {num_classes}"
    )]
    LabelOutOfRange {
        /// Which labels ("training labels" or "test labels").
        what: &'static str,
        /// Position of the first bad label.
        position: usize,
        /// Its value.
        value: i64,
        /// The number of classes.
        num_classes: u64,
    },

    /// The validation fraction is not in `[0, 1)`.
    #[error("val_fraction must be a number in [0, 1), got {value}")]
    InvalidValFraction {
        /// The value given.
        value: f64,
    },

    /// The spec's kind (before the `:`) is unknown.
    #[error("forget spec '{spec}': unknown kind '{kind}'; expected one of {EXPECTED_SPECS}")]
    UnknownSpecKind {
        /// The whole spec.
        spec: String,
        /// The kind found.
        kind: String,
    },

    /// The spec's kind is known but its value is malformed.
    #[error("forget spec '{spec}': expected {expected}, got '{got}'")]
    MalformedSpec {
        /// The whole spec.
        spec: String,
        /// What the value should look like.
        expected: &'static str,
        /// The value found.
        got: String,
    },

    /// `random:P%` with P outside `(0, 100]`.
    #[error("forget spec '{spec}': the percentage must lie in (0, 100], got {percent}%")]
    FractionOutOfRange {
        /// The whole spec.
        spec: String,
        /// The percentage given.
        percent: f64,
    },

    /// A class named in the spec is outside `[0, num_classes)`.
    #[error(
        "forget spec '{spec}': class {class} is out of range; valid classes are 0..={} \
         (num_classes = {num_classes})",
        num_classes.saturating_sub(1)
    )]
    ClassOutOfRange {
        /// The whole spec.
        spec: String,
        /// The class given.
        class: i64,
        /// The number of classes.
        num_classes: u64,
    },

    /// `random:N` (or a percentage) asks for more samples than the training split has.
    #[error(
        "forget spec '{spec}': asks for {requested} samples but the training split \
         (all samples minus validation) has only {available}"
    )]
    ForgetCountTooLarge {
        /// The whole spec.
        spec: String,
        /// The number of samples asked for.
        requested: u64,
        /// The size of the training split.
        available: u64,
    },

    /// The `indices:` file cannot be read.
    #[error("forget spec indices file '{}' cannot be read: {source}", path.display())]
    IndicesFileUnreadable {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },

    /// The `indices:` file holds a token that is not an integer.
    #[error(
        "forget spec indices file '{}', line {line}: '{token}' is not an integer position",
        path.display()
    )]
    IndicesNonInteger {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The token.
        token: String,
    },

    /// The `indices:` file holds a position outside `[0, num_samples)`.
    #[error(
        "forget spec indices file '{}', line {line}: position {token} is out of range; \
         positions index the full training set and must lie in [0, {num_samples})",
        path.display()
    )]
    IndicesOutOfRange {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The position as written.
        token: String,
        /// The size of the full training set.
        num_samples: u64,
    },

    /// The `indices:` file names a position that the plan put into the validation split.
    #[error(
        "forget spec indices file '{}', line {line}: position {position} lies in the \
         validation split (seed {seed}, val_fraction {val_fraction}); forget positions must \
         come from the training split",
        path.display()
    )]
    IndicesInValidation {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The position.
        position: u64,
        /// The seed of the plan.
        seed: u64,
        /// The validation fraction of the plan.
        val_fraction: f64,
    },

    /// The `indices:` file names a position twice.
    #[error(
        "forget spec indices file '{}': position {position} appears twice (lines {first_line} \
         and {second_line}); each position may be listed once",
        path.display()
    )]
    DuplicatePosition {
        /// The file.
        path: PathBuf,
        /// The position.
        position: u64,
        /// 1-based line of the first occurrence.
        first_line: usize,
        /// 1-based line of the second occurrence.
        second_line: usize,
    },

    /// Forgetting would leave nothing to retain.
    #[error(
        "forget spec '{spec}': the forget set takes all {train} samples of the training split, \
         leaving an empty retain set"
    )]
    EmptyRetain {
        /// The whole spec.
        spec: String,
        /// The size of the training split.
        train: u64,
    },

    /// The spec (not `none`) selects no sample.
    #[error(
        "forget spec '{spec}': selects no sample of the training split ({train} samples); \
         a forget set must not be empty (use 'none' to train an original model)"
    )]
    EmptyForget {
        /// The whole spec.
        spec: String,
        /// The size of the training split.
        train: u64,
    },

    /// A split manifest is not valid JSON, or not a consistent split.
    #[error("invalid split manifest: {reason}")]
    InvalidManifest {
        /// What is wrong.
        reason: String,
    },

    /// A manifest's stored fingerprint differs from the one of its index arrays.
    #[error(
        "split manifest fingerprint mismatch: the manifest says {stored} but its index arrays \
         hash to {computed}; the manifest was edited or corrupted"
    )]
    FingerprintMismatch {
        /// The fingerprint written in the manifest.
        stored: String,
        /// The fingerprint of the index arrays it holds.
        computed: String,
    },

    /// A request spec (`fingerprints:`, `ids:`, `files:`) given to [`crate::plan_split`],
    /// which plans from labels alone.
    #[error(
        "forget spec '{spec}' names data by content and must be resolved against the dataset \
         first (dau.data.requests.plan_forget, or plan_split_request with the matched positions)"
    )]
    UnresolvedRequest {
        /// The whole spec.
        spec: String,
    },

    /// A resolved request position outside `[0, num_samples)`, or a plain spec given to
    /// [`crate::plan_split_request`].
    #[error("forget spec '{spec}': {reason}")]
    InvalidRequest {
        /// The whole spec.
        spec: String,
        /// What is wrong.
        reason: String,
    },

    /// A set name other than val, train, forget, retain.
    #[error("unknown split set '{name}'; expected one of val, train, forget, retain")]
    UnknownSet {
        /// The name given.
        name: String,
    },
}

/// Why sample fingerprints cannot be computed, or a fingerprint list cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// A sample of zero bytes.
    #[error("samples must have at least one byte each, got a sample size of 0")]
    EmptySample,

    /// The byte buffer is not a whole number of samples.
    #[error("{len} bytes are not a whole number of samples of {sample_len} bytes")]
    Ragged {
        /// Total bytes given.
        len: usize,
        /// Bytes per sample.
        sample_len: usize,
    },

    /// A thread count of 0, or a thread pool that cannot be started.
    #[error("threads must be at least 1 (or None for all cores), got {threads}")]
    BadThreads {
        /// The value given.
        threads: usize,
    },

    /// A fingerprint file cannot be read.
    #[error("fingerprint file '{}' cannot be read: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },

    /// A token that is not a fingerprint.
    #[error(
        "fingerprint file '{}', line {line}: '{token}' is not a fingerprint; expected \
         {FINGERPRINT_HEX_LEN} hexadecimal digits (as written by `dau fingerprint`)",
        path.display()
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending token (shortened to 80 characters).
        token: String,
    },

    /// A fingerprint file with no fingerprint in it.
    #[error("fingerprint file '{}' lists no fingerprint (only blank lines or # comments)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Hex digits of one sample fingerprint (128 bits).
pub const FINGERPRINT_HEX_LEN: usize = 32;

/// Why a sampler cannot produce its indices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SamplerError {
    /// `k > 0` draws from an empty population.
    #[error("cannot draw {k} samples with replacement from an empty population (n = 0)")]
    EmptyPopulation {
        /// The number of draws asked for.
        k: u64,
    },

    /// A shard that does not exist: `rank >= world_size`, or `world_size == 0`.
    #[error("rank must lie in [0, world_size) with world_size >= 1, got rank {rank} of world_size {world_size}")]
    BadShard {
        /// The rank given.
        rank: u64,
        /// The world size given.
        world_size: u64,
    },

    /// A size beyond [`crate::sampler::MAX_SAMPLER_LEN`].
    #[error("{what} = {value} is too large (at most {max})")]
    TooLarge {
        /// Which argument ("n" or "k").
        what: &'static str,
        /// The value given.
        value: u64,
        /// The largest accepted value.
        max: u64,
    },
}
