//! `dau-core`: the pure-Rust core of dau (no Python).
//!
//! * [`rng`]: the documented deterministic generator (SplitMix64 → xoshiro256\*\*, Lemire
//!   bounded integers) and its independent streams.
//! * [`spec`]: the forget spec (`random:N`, `random:P%`, `class:K`, `classes:K1,K2`,
//!   `indices:FILE`, `none`).
//! * [`plan`]: split planning (validation per class, train, forget, retain), per-class counts,
//!   test-set positions and the split fingerprint.
//! * [`manifest`]: the plan as JSON and back, verified.
//! * [`sampler`]: epoch permutations and draws with replacement, per set and sharded by rank.
//! * [`fingerprint`]: content fingerprints of samples (BLAKE3, parallel), dataset digests and
//!   deletion requests resolved by content.
//! * [`error`]: [`SplitError`], [`SamplerError`] and [`FingerprintError`].
//!
//! ```
//! use dau_core::{plan_split, ForgetSpec};
//! let labels: Vec<i64> = (0..100).map(|i| i % 4).collect();
//! let spec = ForgetSpec::parse("class:2").unwrap();
//! let plan = plan_split(&labels, 4, &spec, 1, 0.1).unwrap();
//! assert_eq!(plan.val().len(), 8); // ⌊0.1 × 25⌋ = 2 per class
//! assert_eq!(plan.forget().len(), 23);
//! ```

pub mod error;
pub mod fingerprint;
pub mod manifest;
pub mod plan;
pub mod rng;
pub mod sampler;
pub mod spec;

pub use error::{FingerprintError, SamplerError, SplitError, EXPECTED_SPECS, FINGERPRINT_HEX_LEN};
pub use fingerprint::{
    digest, fingerprint_sample, fingerprint_samples, parse_fingerprints, read_fingerprints,
    resolve, Fingerprint, ListedFingerprint, FINGERPRINT_ALGORITHM, FINGERPRINT_LEN,
};
pub use manifest::MANIFEST_SCHEMA_VERSION;
pub use plan::{
    fingerprint, plan_split, plan_split_request, val_count, SetName, SplitPlan, DEFAULT_VAL_FRACTION, MAX_CLASSES,
    SPLIT_ALGORITHM_VERSION,
};
pub use rng::{Rng, Stream};
pub use sampler::{
    permutation, permutation_shard, set_stream, with_replacement, with_replacement_shard,
    MAX_SAMPLER_LEN,
};
pub use spec::{parse_indices, read_indices, ForgetSpec, ListedPosition, RequestKind};
