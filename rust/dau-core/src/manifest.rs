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

use std::sync::OnceLock;

use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::error::SplitError;
use crate::plan::{
    check_num_classes, check_val_fraction, fingerprint, SetName, SplitPlan, ROLE_FORGET,
    ROLE_RETAIN, ROLE_VAL, SPLIT_ALGORITHM_VERSION,
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

/// One set's positions, serialised straight from the plan's roles.
struct Positions<'a>(&'a SplitPlan, SetName);

impl Serialize for Positions<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter(self.1))
    }
}

#[derive(Serialize, Deserialize)]
struct Manifest<V, C> {
    schema_version: u32,
    algorithm_version: u32,
    spec: String,
    seed: u64,
    val_fraction: f64,
    num_classes: u64,
    num_samples: u64,
    counts: PerSet<u64>,
    class_counts: PerSet<C>,
    forgotten_classes: Vec<u64>,
    fingerprint: String,
    val: V,
    train: V,
    forget: V,
    retain: V,
}

fn invalid(reason: impl Into<String>) -> SplitError {
    SplitError::InvalidManifest {
        reason: reason.into(),
    }
}

impl SplitPlan {
    /// The manifest as compact JSON (see the module docs).
    #[must_use]
    pub fn to_json(&self) -> String {
        let [cv, ct, cf, cr] = &self.class_counts;
        let m: Manifest<Positions<'_>, &[u64]> = Manifest {
            schema_version: MANIFEST_SCHEMA_VERSION,
            algorithm_version: SPLIT_ALGORITHM_VERSION,
            spec: self.spec.clone(),
            seed: self.seed,
            val_fraction: self.val_fraction,
            num_classes: self.num_classes,
            num_samples: self.num_samples(),
            counts: PerSet {
                val: self.len(SetName::Val),
                train: self.len(SetName::Train),
                forget: self.len(SetName::Forget),
                retain: self.len(SetName::Retain),
            },
            class_counts: PerSet {
                val: cv,
                train: ct,
                forget: cf,
                retain: cr,
            },
            forgotten_classes: self.forgotten_classes.clone(),
            fingerprint: self.fingerprint().to_owned(),
            val: Positions(self, SetName::Val),
            train: Positions(self, SetName::Train),
            forget: Positions(self, SetName::Forget),
            retain: Positions(self, SetName::Retain),
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
        #[derive(Deserialize)]
        struct Version {
            schema_version: Option<serde_json::Value>,
        }
        let check_version =
            |v: Option<&serde_json::Value>| match v.and_then(serde_json::Value::as_u64) {
                Some(v) if v == u64::from(MANIFEST_SCHEMA_VERSION) => Ok(()),
                Some(v) => Err(invalid(format!(
                "schema_version {v} is not supported (this dau reads {MANIFEST_SCHEMA_VERSION})"
            ))),
                None => Err(invalid("missing or non-integer 'schema_version'")),
            };
        let m: Manifest<Vec<u64>, Vec<u64>> = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                // Say "unsupported version" rather than "missing field" for other schemas.
                if let Ok(Version { schema_version }) = serde_json::from_str::<Version>(text) {
                    check_version(schema_version.as_ref())?;
                }
                return Err(invalid(if e.is_syntax() || e.is_eof() {
                    format!("not valid JSON: {e}")
                } else {
                    e.to_string()
                }));
            }
        };
        if m.schema_version != MANIFEST_SCHEMA_VERSION {
            check_version(Some(&serde_json::Value::from(m.schema_version)))?;
        }

        let sets = [m.val, m.train, m.forget, m.retain];
        let computed = fingerprint(&sets);
        if computed != m.fingerprint {
            return Err(SplitError::FingerprintMismatch {
                stored: m.fingerprint,
                computed,
            });
        }

        check_val_fraction(m.val_fraction).map_err(|e| invalid(e.to_string()))?;
        check_num_classes(m.num_classes).map_err(|e| invalid(e.to_string()))?;
        let spec = ForgetSpec::parse(&m.spec).map_err(|e| invalid(e.to_string()))?;
        if spec.to_string() != m.spec {
            return Err(invalid(format!(
                "spec '{}' is not in canonical form",
                m.spec
            )));
        }
        let n = match usize::try_from(m.num_samples) {
            Ok(n) if n > 0 && n as u64 == m.num_samples => n,
            _ => {
                return Err(invalid(format!(
                    "num_samples = {} is not a valid size",
                    m.num_samples
                )))
            }
        };
        let [val, train, forget, retain] = &sets;
        if val.len() as u64 + train.len() as u64 != n as u64 {
            return Err(invalid("'val' and 'train' do not partition 0..num_samples"));
        }

        // Rebuild the roles, checking order, range and the partitions on the way.
        const UNSET: u8 = u8::MAX;
        let mut roles = vec![UNSET; n];
        let mut assign = |name: &str, set: &[u64], from: u8, to: u8| -> Result<(), SplitError> {
            let mut previous: Option<u64> = None;
            for &p in set {
                if previous.is_some_and(|q| q >= p) {
                    return Err(invalid(format!(
                        "'{name}' is not strictly ascending at {p}"
                    )));
                }
                previous = Some(p);
                let slot = usize::try_from(p).ok().and_then(|i| roles.get_mut(i));
                match slot {
                    Some(r) if *r == from => *r = to,
                    Some(_) => {
                        return Err(invalid(format!(
                            "position {p} of '{name}' breaks the partition \
                             (val/train must partition all samples, forget/retain must \
                             partition train)"
                        )))
                    }
                    None => {
                        return Err(invalid(format!(
                            "'{name}' holds position {p}, beyond num_samples = {n}"
                        )))
                    }
                }
            }
            Ok(())
        };
        const TRAIN_UNSPLIT: u8 = u8::MAX - 1;
        assign("val", val, UNSET, ROLE_VAL)?;
        assign("train", train, UNSET, TRAIN_UNSPLIT)?;
        assign("forget", forget, TRAIN_UNSPLIT, ROLE_FORGET)?;
        assign("retain", retain, TRAIN_UNSPLIT, ROLE_RETAIN)?;
        if forget.len() + retain.len() != train.len() {
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
        if m.forgotten_classes != expected_classes
            || expected_classes.iter().any(|&k| k >= m.num_classes)
        {
            return Err(invalid(format!(
                "forgotten_classes {:?} do not match spec '{}' with num_classes = {}",
                m.forgotten_classes, m.spec, m.num_classes
            )));
        }

        // The forget set must be what the spec says (its size, or its classes).
        let expected_forget = match spec {
            ForgetSpec::RandomCount(k) => Some(k),
            ForgetSpec::RandomPercent(p) => Some((p * train.len() as f64 / 100.0).floor() as u64),
            _ => None,
        };
        if let Some(k) = expected_forget {
            if k != forget.len() as u64 {
                return Err(invalid(format!(
                    "spec '{}' selects {k} samples but 'forget' holds {}",
                    m.spec,
                    forget.len()
                )));
            }
        }
        if !expected_classes.is_empty() {
            for (k, (&t, &f)) in train_cc.iter().zip(forget_cc).enumerate() {
                let forgotten = expected_classes.binary_search(&(k as u64)).is_ok();
                if f != if forgotten { t } else { 0 } {
                    return Err(invalid(format!(
                        "spec '{}' does not match the forget count {f} of class {k}",
                        m.spec
                    )));
                }
            }
        }

        let counts = SetName::ALL.map(|s| *m.counts.get(s));
        Ok(SplitPlan {
            spec: m.spec,
            seed: m.seed,
            val_fraction: m.val_fraction,
            num_classes: m.num_classes,
            forgotten_classes: m.forgotten_classes,
            roles,
            counts,
            class_counts,
            fingerprint: OnceLock::from(m.fingerprint),
        })
    }
}
