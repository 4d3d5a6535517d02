//! The split manifest: a plan as JSON, read back with its fingerprint verified.
//!
//! Schema (version [`MANIFEST_SCHEMA_VERSION`]), one JSON object:
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "algorithm_version": 1,          // SPLIT_ALGORITHM_VERSION that drew the plan
//!   "spec": "class:3",               // canonical forget spec
//!   "seed": 1,                       // unsigned 64-bit
//!   "val_fraction": 0.1,
//!   "num_classes": 10,
//!   "num_samples": 50000,            // size of the full training set
//!   "counts": {"val": 5000, "train": 45000, "forget": 4500, "retain": 40500},
//!   "class_counts": {"val": [...], "train": [...], "forget": [...], "retain": [...]},
//!   "forgotten_classes": [3],
//!   "fingerprint": "<64 hex digits>",
//!   "val": [...], "train": [...], "forget": [...], "retain": [...]   // ascending positions
//! }
//! ```
//!
//! Reading checks, in this order: valid JSON of this shape and schema version; the
//! fingerprint of the arrays equals the stored one ([`SplitError::FingerprintMismatch`]
//! otherwise); then that the arrays form a consistent split (sorted, in range, val ∪ train =
//! all, forget ∪ retain = train, disjoint) matching the counts, class counts and spec.

use serde::{Deserialize, Serialize};

use crate::error::SplitError;
use crate::plan::{
    check_num_classes, check_val_fraction, fingerprint, SetName, SplitPlan,
    SPLIT_ALGORITHM_VERSION,
};
use crate::spec::ForgetSpec;

/// The manifest schema version this crate writes and reads.
pub const MANIFEST_SCHEMA_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct PerSet<T> {
    val: T,
    train: T,
    forget: T,
    retain: T,
}

impl<T> PerSet<T> {
    fn get(&self, name: SetName) -> &T {
        match name {
            SetName::Val => &self.val,
            SetName::Train => &self.train,
            SetName::Forget => &self.forget,
            SetName::Retain => &self.retain,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Manifest<V> {
    schema_version: u32,
    algorithm_version: u32,
    spec: String,
    seed: u64,
    val_fraction: f64,
    num_classes: u64,
    num_samples: u64,
    counts: PerSet<u64>,
    class_counts: PerSet<V>,
    forgotten_classes: Vec<u64>,
    fingerprint: String,
    val: V,
    train: V,
    forget: V,
    retain: V,
}

fn invalid(reason: impl Into<String>) -> SplitError {
    SplitError::InvalidManifest { reason: reason.into() }
}

impl SplitPlan {
    /// The manifest as compact JSON (see the module docs).
    #[must_use]
    pub fn to_json(&self) -> String {
        let [val, train, forget, retain] = &self.sets;
        let [cv, ct, cf, cr] = &self.class_counts;
        let m: Manifest<&[u64]> = Manifest {
            schema_version: MANIFEST_SCHEMA_VERSION,
            algorithm_version: SPLIT_ALGORITHM_VERSION,
            spec: self.spec.clone(),
            seed: self.seed,
            val_fraction: self.val_fraction,
            num_classes: self.num_classes,
            num_samples: self.num_samples,
            counts: PerSet {
                val: val.len() as u64,
                train: train.len() as u64,
                forget: forget.len() as u64,
                retain: retain.len() as u64,
            },
            class_counts: PerSet { val: cv, train: ct, forget: cf, retain: cr },
            forgotten_classes: self.forgotten_classes.clone(),
            fingerprint: self.fingerprint.clone(),
            val,
            train,
            forget,
            retain,
        };
        // Serialising plain integers, strings and a finite float cannot fail.
        serde_json::to_string(&m).unwrap_or_default()
    }

    /// Reads a manifest written by [`Self::to_json`], verifying it (see the module docs).
    ///
    /// # Errors
    /// [`SplitError::InvalidManifest`] for malformed JSON or an inconsistent split,
    /// [`SplitError::FingerprintMismatch`] when the arrays do not hash to the stored fingerprint.
    pub fn from_json(text: &str) -> Result<Self, SplitError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
        match value.get("schema_version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(MANIFEST_SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(invalid(format!(
                    "schema_version {v} is not supported (this dau reads {MANIFEST_SCHEMA_VERSION})"
                )))
            }
            None => return Err(invalid("missing or non-integer 'schema_version'")),
        }
        let m: Manifest<Vec<u64>> = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;

        let sets = [m.val, m.train, m.forget, m.retain];
        let computed = fingerprint(&sets);
        if computed != m.fingerprint {
            return Err(SplitError::FingerprintMismatch { stored: m.fingerprint, computed });
        }

        check_val_fraction(m.val_fraction).map_err(|e| invalid(e.to_string()))?;
        check_num_classes(m.num_classes).map_err(|e| invalid(e.to_string()))?;
        let spec = ForgetSpec::parse(&m.spec).map_err(|e| invalid(e.to_string()))?;
        if spec.to_string() != m.spec {
            return Err(invalid(format!("spec '{}' is not in canonical form", m.spec)));
        }
        let n = m.num_samples;
        if n == 0 || usize::try_from(n).is_err() {
            return Err(invalid(format!("num_samples = {n} is not a valid size")));
        }

        for (name, set) in SetName::ALL.iter().zip(&sets) {
            let name = name.as_str();
            if let Some(w) = set.windows(2).find(|w| w[0] >= w[1]) {
                return Err(invalid(format!(
                    "'{name}' is not strictly ascending ({} then {})",
                    w[0], w[1]
                )));
            }
            if let Some(&last) = set.last() {
                if last >= n {
                    return Err(invalid(format!(
                        "'{name}' holds position {last}, beyond num_samples = {n}"
                    )));
                }
            }
        }
        let [val, train, forget, retain] = &sets;
        if val.len() as u64 + train.len() as u64 != n || !disjoint(val, train) {
            return Err(invalid("'val' and 'train' do not partition 0..num_samples"));
        }
        if forget.len() + retain.len() != train.len()
            || !disjoint(forget, retain)
            || !is_subset(forget, train)
            || !is_subset(retain, train)
        {
            return Err(invalid("'forget' and 'retain' do not partition 'train'"));
        }
        if forget.is_empty() != spec.is_none() || retain.is_empty() {
            return Err(invalid(format!(
                "spec '{}' does not match a forget set of {} and a retain set of {} samples",
                m.spec,
                forget.len(),
                retain.len()
            )));
        }

        let c = m.num_classes as usize;
        for (name, set) in SetName::ALL.iter().zip(&sets) {
            let s = name.as_str();
            let count = *m.counts.get(*name);
            if count != set.len() as u64 {
                return Err(invalid(format!(
                    "counts.{s} = {count} but '{s}' holds {} positions",
                    set.len()
                )));
            }
            let per_class = m.class_counts.get(*name);
            if per_class.len() != c {
                return Err(invalid(format!(
                    "class_counts.{s} has {} entries, expected num_classes = {c}",
                    per_class.len()
                )));
            }
            let total = per_class.iter().try_fold(0u64, |a, &b| a.checked_add(b));
            if total != Some(set.len() as u64) {
                return Err(invalid(format!(
                    "class_counts.{s} does not add up to {} positions",
                    set.len()
                )));
            }
        }
        let class_counts = SetName::ALL.map(|s| m.class_counts.get(s).clone());
        let [_, train_cc, forget_cc, retain_cc] = &class_counts;
        for (i, ((&t, &f), &r)) in train_cc.iter().zip(forget_cc).zip(retain_cc).enumerate() {
            if f.checked_add(r) != Some(t) {
                return Err(invalid(format!(
                    "class {i}: forget ({f}) + retain ({r}) != train ({t})"
                )));
            }
        }

        let expected_classes: Vec<u64> = spec
            .classes()
            .iter()
            .map(|&k| u64::try_from(k).unwrap_or(u64::MAX))
            .collect();
        if m.forgotten_classes != expected_classes || expected_classes.iter().any(|&k| k >= m.num_classes)
        {
            return Err(invalid(format!(
                "forgotten_classes {:?} do not match spec '{}' with num_classes = {}",
                m.forgotten_classes, m.spec, m.num_classes
            )));
        }

        Ok(SplitPlan {
            spec: m.spec,
            seed: m.seed,
            val_fraction: m.val_fraction,
            num_classes: m.num_classes,
            num_samples: n,
            forgotten_classes: m.forgotten_classes,
            sets,
            class_counts,
            fingerprint: m.fingerprint,
        })
    }
}

/// Whether two ascending slices share no element.
fn disjoint(a: &[u64], b: &[u64]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return false,
        }
    }
    true
}

/// Whether ascending `a` ⊆ ascending `b`.
fn is_subset(a: &[u64], b: &[u64]) -> bool {
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j == b.len() || b[j] != x {
            return false;
        }
        j += 1;
    }
    true
}
