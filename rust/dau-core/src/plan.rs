//! Split planning: validation, train, forget and retain index sets from a label array.
//!
//! # The algorithm (version [`SPLIT_ALGORITHM_VERSION`])
//!
//! Inputs: the labels of the full training set (`N` samples, classes `0..C`), a
//! [`ForgetSpec`], a `seed` and `val_fraction` in `[0, 1)`. All randomness comes from
//! [`crate::rng`].
//!
//! 1. **Validation** (stream [`Stream::Validation`], one generator for all classes): for each
//!    class `c = 0, 1, …, C-1` in ascending order, take the ascending positions of class `c`
//!    (`m` of them) and draw `k = ⌊val_fraction × m⌋` of them (the product in IEEE-754 double
//!    precision, then floor) by partial Fisher–Yates; classes with `k = 0` draw nothing.
//! 2. **Train** = every position not in validation (what the original model trains on).
//! 3. **Forget** ⊂ train, by spec: `random:N` draws `N` positions by partial Fisher–Yates over
//!    the ascending train positions (stream [`Stream::Forget`]); `random:P%` does the same with
//!    `N = ⌊P × |train| / 100⌋` (double precision); `class:K`/`classes:…` take every train
//!    position of those classes; `indices:FILE` takes exactly the listed positions (original
//!    positions `0..N`), which must be distinct and outside validation; `none` takes nothing.
//! 4. **Retain** = train − forget.
//!
//! Every index array is sorted ascending. The [fingerprint](SplitPlan::fingerprint) is the
//! SHA-256 of a fixed byte layout of the four arrays (see [`fingerprint`]).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::error::SplitError;
use crate::rng::{Rng, Stream};
use crate::spec::{read_indices, ForgetSpec};

/// Bumped whenever a change would give a different plan for the same inputs.
pub const SPLIT_ALGORITHM_VERSION: u32 = 1;

/// The default fraction of each class carved out for validation.
pub const DEFAULT_VAL_FRACTION: f64 = 0.1;

/// The largest accepted number of classes.
pub const MAX_CLASSES: u64 = 1_000_000;

/// The four index sets of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetName {
    /// Validation split (carved per class from the training set).
    Val,
    /// Training split = all − val.
    Train,
    /// Forget set ⊂ train.
    Forget,
    /// Retain set = train − forget.
    Retain,
}

impl SetName {
    /// All sets, in fingerprint and manifest order.
    pub const ALL: [SetName; 4] = [SetName::Val, SetName::Train, SetName::Forget, SetName::Retain];

    /// `"val"`, `"train"`, `"forget"` or `"retain"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SetName::Val => "val",
            SetName::Train => "train",
            SetName::Forget => "forget",
            SetName::Retain => "retain",
        }
    }

    /// Parses a set name.
    ///
    /// # Errors
    /// [`SplitError::UnknownSet`].
    pub fn parse(name: &str) -> Result<Self, SplitError> {
        match name {
            "val" => Ok(SetName::Val),
            "train" => Ok(SetName::Train),
            "forget" => Ok(SetName::Forget),
            "retain" => Ok(SetName::Retain),
            _ => Err(SplitError::UnknownSet { name: name.to_owned() }),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A planned split (see the module docs). Immutable once built.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitPlan {
    pub(crate) spec: String,
    pub(crate) seed: u64,
    pub(crate) val_fraction: f64,
    pub(crate) num_classes: u64,
    pub(crate) num_samples: u64,
    pub(crate) forgotten_classes: Vec<u64>,
    /// val, train, forget, retain (in [`SetName`] order).
    pub(crate) sets: [Vec<u64>; 4],
    /// Per-class counts of each set, in [`SetName`] order.
    pub(crate) class_counts: [Vec<u64>; 4],
    pub(crate) fingerprint: String,
}

/// Number of validation samples drawn from a class of `m` samples: `⌊val_fraction × m⌋`.
#[must_use]
pub fn val_count(val_fraction: f64, m: u64) -> u64 {
    // Exact for m < 2^53; the product is below m because val_fraction < 1.
    ((val_fraction * m as f64).floor() as u64).min(m)
}

pub(crate) fn check_val_fraction(val_fraction: f64) -> Result<(), SplitError> {
    if (0.0..1.0).contains(&val_fraction) {
        Ok(())
    } else {
        Err(SplitError::InvalidValFraction { value: val_fraction })
    }
}

pub(crate) fn check_num_classes(num_classes: u64) -> Result<(), SplitError> {
    if num_classes == 0 {
        return Err(SplitError::ZeroClasses);
    }
    if num_classes > MAX_CLASSES {
        return Err(SplitError::TooManyClasses { num_classes, max: MAX_CLASSES });
    }
    Ok(())
}

/// Checks that every label lies in `[0, num_classes)` and returns the per-class counts.
fn count_labels(labels: &[i64], num_classes: u64, what: &'static str) -> Result<Vec<u64>, SplitError> {
    let mut counts = vec![0u64; num_classes as usize];
    for (position, &value) in labels.iter().enumerate() {
        match usize::try_from(value).ok().and_then(|c| counts.get_mut(c)) {
            Some(slot) => *slot += 1,
            None => {
                return Err(SplitError::LabelOutOfRange { what, position, value, num_classes });
            }
        }
    }
    Ok(counts)
}

const ROLE_RETAIN: u8 = 0;
const ROLE_VAL: u8 = 1;
const ROLE_FORGET: u8 = 2;

/// Plans a split (see the module docs).
///
/// # Errors
/// Every [`SplitError`] variant about inputs: empty labels, `num_classes` 0 or too large,
/// a label out of range, `val_fraction` outside `[0, 1)`, a class out of range, a forget count
/// larger than the training split, an unreadable or invalid `indices:` file, an empty forget
/// set (unless `none`) or an empty retain set.
pub fn plan_split(
    labels: &[i64],
    num_classes: u64,
    spec: &ForgetSpec,
    seed: u64,
    val_fraction: f64,
) -> Result<SplitPlan, SplitError> {
    check_val_fraction(val_fraction)?;
    check_num_classes(num_classes)?;
    if labels.is_empty() {
        return Err(SplitError::EmptyLabels);
    }
    let spec_text = spec.to_string();
    let n = labels.len();
    let class_sizes = count_labels(labels, num_classes, "training labels")?;

    // Spec checks that need no drawing come first, so a bad spec fails fast.
    let mut forget_class = Vec::new();
    for &k in spec.classes() {
        match u64::try_from(k).ok().filter(|&k| k < num_classes) {
            Some(k) => forget_class.push(k),
            None => {
                return Err(SplitError::ClassOutOfRange {
                    spec: spec_text,
                    class: k,
                    num_classes,
                })
            }
        }
    }
    let listed = match spec {
        ForgetSpec::Indices(path) => read_indices(path, n as u64)?,
        _ => Vec::new(),
    };

    // Positions grouped by class (counting sort; ascending within each class).
    let c = class_sizes.len();
    let mut offsets = Vec::with_capacity(c + 1);
    let mut acc = 0usize;
    offsets.push(0);
    for &m in &class_sizes {
        acc += m as usize;
        offsets.push(acc);
    }
    let mut by_class = vec![0u64; n];
    {
        let mut cursor = offsets[..c].to_vec();
        for (position, &label) in labels.iter().enumerate() {
            let slot = &mut cursor[label as usize];
            by_class[*slot] = position as u64;
            *slot += 1;
        }
    }

    // 1. Validation.
    let mut role = vec![ROLE_RETAIN; n];
    let mut rng = Rng::new(seed, Stream::Validation);
    let mut n_val = 0usize;
    for class in 0..c {
        let members = &mut by_class[offsets[class]..offsets[class + 1]];
        let k = val_count(val_fraction, members.len() as u64) as usize;
        rng.partial_shuffle(members, k);
        for &p in &members[..k] {
            role[p as usize] = ROLE_VAL;
        }
        n_val += k;
    }
    let n_train = (n - n_val) as u64;

    // 3. Forget.
    let path_of = |spec: &ForgetSpec| match spec {
        ForgetSpec::Indices(p) => p.clone(),
        _ => std::path::PathBuf::new(),
    };
    match spec {
        ForgetSpec::None => {}
        ForgetSpec::RandomCount(_) | ForgetSpec::RandomPercent(_) => {
            let requested = match *spec {
                ForgetSpec::RandomCount(k) => k,
                ForgetSpec::RandomPercent(p) => (p * n_train as f64 / 100.0).floor() as u64,
                _ => 0,
            };
            if requested > n_train {
                return Err(SplitError::ForgetCountTooLarge {
                    spec: spec_text,
                    requested,
                    available: n_train,
                });
            }
            // Reuse the by-class buffer for the ascending train positions.
            let mut len = 0;
            for (position, &r) in role.iter().enumerate() {
                if r == ROLE_RETAIN {
                    by_class[len] = position as u64;
                    len += 1;
                }
            }
            let candidates = &mut by_class[..len];
            let mut rng = Rng::new(seed, Stream::Forget);
            rng.partial_shuffle(candidates, requested as usize);
            for &p in &candidates[..requested as usize] {
                role[p as usize] = ROLE_FORGET;
            }
        }
        ForgetSpec::Class(_) | ForgetSpec::Classes(_) => {
            let mut is_forgotten = vec![false; c];
            for &k in &forget_class {
                is_forgotten[k as usize] = true;
            }
            for (r, &label) in role.iter_mut().zip(labels) {
                if *r == ROLE_RETAIN && is_forgotten[label as usize] {
                    *r = ROLE_FORGET;
                }
            }
        }
        ForgetSpec::Indices(_) => {
            for (i, item) in listed.iter().enumerate() {
                let p = item.position as usize;
                match role[p] {
                    ROLE_VAL => {
                        return Err(SplitError::IndicesInValidation {
                            path: path_of(spec),
                            line: item.line,
                            position: item.position,
                            seed,
                            val_fraction,
                        })
                    }
                    ROLE_FORGET => {
                        let first_line = listed[..i]
                            .iter()
                            .find(|x| x.position == item.position)
                            .map_or(item.line, |x| x.line);
                        return Err(SplitError::DuplicatePosition {
                            path: path_of(spec),
                            position: item.position,
                            first_line,
                            second_line: item.line,
                        });
                    }
                    _ => role[p] = ROLE_FORGET,
                }
            }
        }
    }

    // 2 + 4. Collect the sorted sets and their per-class counts in one pass.
    let n_forget = role.iter().filter(|&&r| r == ROLE_FORGET).count();
    let mut val = Vec::with_capacity(n_val);
    let mut train = Vec::with_capacity(n - n_val);
    let mut forget = Vec::with_capacity(n_forget);
    let mut retain = Vec::with_capacity(n - n_val - n_forget);
    let mut counts = [vec![0u64; c], vec![0u64; c], vec![0u64; c], vec![0u64; c]];
    for (position, (&r, &label)) in role.iter().zip(labels).enumerate() {
        let p = position as u64;
        let label = label as usize;
        if r == ROLE_VAL {
            val.push(p);
            counts[0][label] += 1;
        } else {
            train.push(p);
            counts[1][label] += 1;
            if r == ROLE_FORGET {
                forget.push(p);
                counts[2][label] += 1;
            } else {
                retain.push(p);
                counts[3][label] += 1;
            }
        }
    }
    if forget.is_empty() && !spec.is_none() {
        return Err(SplitError::EmptyForget { spec: spec_text, train: n_train });
    }
    if retain.is_empty() {
        return Err(SplitError::EmptyRetain { spec: spec_text, train: n_train });
    }

    let sets = [val, train, forget, retain];
    let fingerprint = fingerprint(&sets);
    Ok(SplitPlan {
        spec: spec_text,
        seed,
        val_fraction,
        num_classes,
        num_samples: n as u64,
        forgotten_classes: forget_class,
        sets,
        class_counts: counts,
        fingerprint,
    })
}

/// The split fingerprint: lowercase hex SHA-256 of this byte string:
///
/// ```text
/// "dau-split-v1\n"
/// for name, positions in (val, train, forget, retain):
///     name (ASCII) , 0x00 , len(positions) as u64 little-endian ,
///     each position as u64 little-endian (ascending)
/// ```
#[must_use]
pub fn fingerprint(sets: &[Vec<u64>; 4]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"dau-split-v1\n");
    let mut buf = [0u8; 8 * 1024];
    for (name, positions) in SetName::ALL.iter().zip(sets) {
        hasher.update(name.as_str().as_bytes());
        hasher.update([0u8]);
        hasher.update((positions.len() as u64).to_le_bytes());
        for chunk in positions.chunks(buf.len() / 8) {
            for (dst, p) in buf.chunks_exact_mut(8).zip(chunk) {
                dst.copy_from_slice(&p.to_le_bytes());
            }
            hasher.update(&buf[..chunk.len() * 8]);
        }
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

impl SplitPlan {
    /// The canonical forget spec (see [`ForgetSpec`]'s `Display`).
    #[must_use]
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// The seed the plan was drawn with.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The fraction of each class carved out for validation.
    #[must_use]
    pub fn val_fraction(&self) -> f64 {
        self.val_fraction
    }

    /// The number of classes.
    #[must_use]
    pub fn num_classes(&self) -> u64 {
        self.num_classes
    }

    /// The size of the full training set.
    #[must_use]
    pub fn num_samples(&self) -> u64 {
        self.num_samples
    }

    /// Classes forgotten entirely (`class`/`classes` specs), ascending; empty otherwise.
    #[must_use]
    pub fn forgotten_classes(&self) -> &[u64] {
        &self.forgotten_classes
    }

    /// The sorted positions of one set.
    #[must_use]
    pub fn set(&self, name: SetName) -> &[u64] {
        &self.sets[name.index()]
    }

    /// Validation positions, ascending.
    #[must_use]
    pub fn val(&self) -> &[u64] {
        self.set(SetName::Val)
    }

    /// Training-split positions (all − val), ascending.
    #[must_use]
    pub fn train(&self) -> &[u64] {
        self.set(SetName::Train)
    }

    /// Forget positions, ascending.
    #[must_use]
    pub fn forget(&self) -> &[u64] {
        self.set(SetName::Forget)
    }

    /// Retain positions (train − forget), ascending.
    #[must_use]
    pub fn retain(&self) -> &[u64] {
        self.set(SetName::Retain)
    }

    /// The size of each set, in [`SetName::ALL`] order.
    #[must_use]
    pub fn counts(&self) -> [(SetName, u64); 4] {
        SetName::ALL.map(|s| (s, self.set(s).len() as u64))
    }

    /// Per-class sample counts of one set (length `num_classes`).
    #[must_use]
    pub fn class_counts(&self, name: SetName) -> &[u64] {
        &self.class_counts[name.index()]
    }

    /// The split fingerprint (see [`fingerprint`]).
    #[must_use]
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Positions of the test set to evaluate on, ascending: all of them, or, when
    /// `drop_forgotten_classes`, those whose class is not in [`Self::forgotten_classes`].
    ///
    /// # Errors
    /// [`SplitError::LabelOutOfRange`] for a test label outside `[0, num_classes)`.
    pub fn test_indices(
        &self,
        test_labels: &[i64],
        drop_forgotten_classes: bool,
    ) -> Result<Vec<u64>, SplitError> {
        let mut dropped = vec![false; self.num_classes as usize];
        if drop_forgotten_classes {
            for &k in &self.forgotten_classes {
                dropped[k as usize] = true;
            }
        }
        let mut out = Vec::with_capacity(test_labels.len());
        for (position, &value) in test_labels.iter().enumerate() {
            match usize::try_from(value).ok().and_then(|c| dropped.get(c)) {
                Some(false) => out.push(position as u64),
                Some(true) => {}
                None => {
                    return Err(SplitError::LabelOutOfRange {
                        what: "test labels",
                        position,
                        value,
                        num_classes: self.num_classes,
                    })
                }
            }
        }
        Ok(out)
    }
}
