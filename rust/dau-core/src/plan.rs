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
//!    positions `0..N`), which must be distinct and outside validation; a resolved request
//!    (`fingerprints:`, `ids:`, `files:`, see [`plan_split_request`]) takes its matched
//!    positions that lie in train; `none` takes nothing.
//! 4. **Retain** = train − forget.
//!
//! Every index array is sorted ascending. The [fingerprint](SplitPlan::fingerprint) is the
//! SHA-256 of a fixed byte layout of the four arrays (see [`fingerprint`]).
//!
//! A plan stores one role byte per sample (val, forget or retain) plus counts; the sorted
//! position arrays are produced on demand ([`SplitPlan::positions`], [`SplitPlan::iter`]),
//! so planning touches little memory: O(N) time, about 6 bytes per sample of scratch.

use std::fmt::Write as _;
use std::sync::OnceLock;

use rayon::prelude::*;
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
    pub const ALL: [SetName; 4] = [
        SetName::Val,
        SetName::Train,
        SetName::Forget,
        SetName::Retain,
    ];

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
            _ => Err(SplitError::UnknownSet {
                name: name.to_owned(),
            }),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A planned split (see the module docs). Immutable once built.
#[derive(Clone, Debug)]
pub struct SplitPlan {
    pub(crate) spec: String,
    pub(crate) seed: u64,
    pub(crate) val_fraction: f64,
    pub(crate) num_classes: u64,
    pub(crate) forgotten_classes: Vec<u64>,
    /// One of `ROLE_*` per sample of the full training set.
    pub(crate) roles: Vec<u8>,
    /// Size of each set, in [`SetName`] order.
    pub(crate) counts: [u64; 4],
    /// Per-class counts of each set, in [`SetName`] order.
    pub(crate) class_counts: [Vec<u64>; 4],
    /// Computed on first use.
    pub(crate) fingerprint: OnceLock<String>,
}

/// Plans are equal when they hold the same sets and metadata (the fingerprint follows).
impl PartialEq for SplitPlan {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
            && self.seed == other.seed
            && self.val_fraction.to_bits() == other.val_fraction.to_bits()
            && self.num_classes == other.num_classes
            && self.forgotten_classes == other.forgotten_classes
            && self.counts == other.counts
            && self.class_counts == other.class_counts
            && self.roles == other.roles
    }
}

pub(crate) const ROLE_RETAIN: u8 = 0;
pub(crate) const ROLE_VAL: u8 = 1;
pub(crate) const ROLE_FORGET: u8 = 2;

/// Whether a sample with `role` belongs to `set`.
#[inline]
pub(crate) fn in_set(set: SetName, role: u8) -> bool {
    match set {
        SetName::Val => role == ROLE_VAL,
        SetName::Train => role != ROLE_VAL,
        SetName::Forget => role == ROLE_FORGET,
        SetName::Retain => role == ROLE_RETAIN,
    }
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
        Err(SplitError::InvalidValFraction {
            value: val_fraction,
        })
    }
}

pub(crate) fn check_num_classes(num_classes: u64) -> Result<(), SplitError> {
    if num_classes == 0 {
        return Err(SplitError::ZeroClasses);
    }
    if num_classes > MAX_CLASSES {
        return Err(SplitError::TooManyClasses {
            num_classes,
            max: MAX_CLASSES,
        });
    }
    Ok(())
}

/// Checks that every label lies in `[0, num_classes)` and returns the per-class counts.
fn count_labels(
    labels: &[i64],
    num_classes: u64,
    what: &'static str,
) -> Result<Vec<u64>, SplitError> {
    let mut counts = vec![0u64; num_classes as usize];
    for (position, &value) in labels.iter().enumerate() {
        match usize::try_from(value).ok().and_then(|c| counts.get_mut(c)) {
            Some(slot) => *slot += 1,
            None => {
                return Err(SplitError::LabelOutOfRange {
                    what,
                    position,
                    value,
                    num_classes,
                });
            }
        }
    }
    Ok(counts)
}

/// A position type for scratch buffers: `u32` when the training set allows it (half the
/// memory traffic), `u64` otherwise. The draws do not depend on the choice.
trait Pos: Copy + Default {
    fn from_usize(i: usize) -> Self;
    fn index(self) -> usize;
}

impl Pos for u32 {
    #[inline]
    fn from_usize(i: usize) -> Self {
        i as u32
    }
    #[inline]
    fn index(self) -> usize {
        self as usize
    }
}

impl Pos for u64 {
    #[inline]
    fn from_usize(i: usize) -> Self {
        i as u64
    }
    #[inline]
    fn index(self) -> usize {
        self as usize
    }
}

/// Steps 1 and (for `random`) 3 of the algorithm: marks validation and randomly forgotten
/// samples in `roles` and adds the forgotten samples' classes to `forget_counts`.
fn draw_roles<P: Pos>(
    labels: &[i64],
    class_sizes: &[u64],
    val_fraction: f64,
    seed: u64,
    random_forget: Option<usize>,
    roles: &mut [u8],
    forget_counts: &mut [u64],
) {
    // Positions grouped by class (counting sort; ascending within each class).
    let c = class_sizes.len();
    let mut offsets = Vec::with_capacity(c + 1);
    let mut acc = 0usize;
    offsets.push(0);
    for &m in class_sizes {
        acc += m as usize;
        offsets.push(acc);
    }
    let mut by_class = vec![P::default(); labels.len()];
    {
        let mut cursor = offsets[..c].to_vec();
        for (position, &label) in labels.iter().enumerate() {
            let slot = &mut cursor[label as usize];
            by_class[*slot] = P::from_usize(position);
            *slot += 1;
        }
    }

    // 1. Validation: one generator, classes in ascending order.
    let mut rng = Rng::new(seed, Stream::Validation);
    for class in 0..c {
        let members = &mut by_class[offsets[class]..offsets[class + 1]];
        let k = val_count(val_fraction, members.len() as u64) as usize;
        rng.partial_shuffle(members, k);
        for &p in &members[..k] {
            roles[p.index()] = ROLE_VAL;
        }
    }

    // 3. Random forget: the ascending train positions (reusing the buffer), then k draws.
    if let Some(k) = random_forget {
        let mut len = 0;
        for (position, &r) in roles.iter().enumerate() {
            if r == ROLE_RETAIN {
                by_class[len] = P::from_usize(position);
                len += 1;
            }
        }
        let candidates = &mut by_class[..len];
        Rng::new(seed, Stream::Forget).partial_shuffle(candidates, k);
        for &p in &candidates[..k] {
            roles[p.index()] = ROLE_FORGET;
            forget_counts[labels[p.index()] as usize] += 1;
        }
    }
}

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
    if spec.request().is_some() {
        return Err(SplitError::UnresolvedRequest {
            spec: spec.to_string(),
        });
    }
    plan_inner(labels, num_classes, spec, seed, val_fraction, &[]).map(|(plan, _)| plan)
}

/// Plans a split whose forget set is a resolved deletion request: `spec` is the request
/// (`fingerprints:`, `ids:` or `files:`, recorded in the plan) and `positions` the positions
/// (in the full training set, any order) its items matched. Matched positions in the training
/// split are forgotten (a position listed twice, once); those in the validation split were
/// never trained on and are returned, ascending, instead of being forgotten. Validation is
/// carved exactly as for every other spec, so train and val equal those of `none`.
///
/// # Errors
/// The errors of [`plan_split`]; [`SplitError::InvalidRequest`] when `spec` is not a request
/// or a position lies outside `[0, labels.len())`; [`SplitError::EmptyForget`] when no
/// position lies in the training split.
pub fn plan_split_request(
    labels: &[i64],
    num_classes: u64,
    spec: &ForgetSpec,
    seed: u64,
    val_fraction: f64,
    positions: &[u64],
) -> Result<(SplitPlan, Vec<u64>), SplitError> {
    if spec.request().is_none() {
        return Err(SplitError::InvalidRequest {
            spec: spec.to_string(),
            reason: "not a request (expected fingerprints:FILE, ids:FILE or files:PATH); \
                     use plan_split"
                .to_owned(),
        });
    }
    plan_inner(labels, num_classes, spec, seed, val_fraction, positions)
}

fn plan_inner(
    labels: &[i64],
    num_classes: u64,
    spec: &ForgetSpec,
    seed: u64,
    val_fraction: f64,
    resolved: &[u64],
) -> Result<(SplitPlan, Vec<u64>), SplitError> {
    check_val_fraction(val_fraction)?;
    check_num_classes(num_classes)?;
    if labels.is_empty() {
        return Err(SplitError::EmptyLabels);
    }
    let spec_text = spec.to_string();
    let n = labels.len();
    let class_sizes = count_labels(labels, num_classes, "training labels")?;
    let c = class_sizes.len();
    let val_counts: Vec<u64> = class_sizes
        .iter()
        .map(|&m| val_count(val_fraction, m))
        .collect();
    let n_train = n as u64 - val_counts.iter().sum::<u64>();

    // Checks that need no drawing come first, so a bad spec fails fast.
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
    let random_forget = match *spec {
        ForgetSpec::RandomCount(k) => Some(k),
        ForgetSpec::RandomPercent(p) => Some((p * n_train as f64 / 100.0).floor() as u64),
        _ => None,
    };
    if let Some(requested) = random_forget {
        if requested > n_train {
            return Err(SplitError::ForgetCountTooLarge {
                spec: spec_text,
                requested,
                available: n_train,
            });
        }
    }
    let listed = match spec {
        ForgetSpec::Indices(path) => read_indices(path, n as u64)?,
        _ => Vec::new(),
    };
    if let Some(&bad) = resolved.iter().find(|&&p| p >= n as u64) {
        return Err(SplitError::InvalidRequest {
            spec: spec_text,
            reason: format!(
                "matched position {bad} is out of range; positions must lie in [0, {n})"
            ),
        });
    }
    let mut in_val = Vec::new();

    let mut roles = vec![ROLE_RETAIN; n];
    let mut forget_counts = vec![0u64; c];
    let random_forget = random_forget.map(|k| k as usize);
    if u32::try_from(n).is_ok() {
        draw_roles::<u32>(
            labels,
            &class_sizes,
            val_fraction,
            seed,
            random_forget,
            &mut roles,
            &mut forget_counts,
        );
    } else {
        draw_roles::<u64>(
            labels,
            &class_sizes,
            val_fraction,
            seed,
            random_forget,
            &mut roles,
            &mut forget_counts,
        );
    }
    let train_counts: Vec<u64> = class_sizes
        .iter()
        .zip(&val_counts)
        .map(|(m, v)| m - v)
        .collect();

    match spec {
        ForgetSpec::Class(_) | ForgetSpec::Classes(_) => {
            let mut is_forgotten = vec![false; c];
            for &k in &forget_class {
                is_forgotten[k as usize] = true;
                forget_counts[k as usize] = train_counts[k as usize];
            }
            for (r, &label) in roles.iter_mut().zip(labels) {
                if *r == ROLE_RETAIN && is_forgotten[label as usize] {
                    *r = ROLE_FORGET;
                }
            }
        }
        ForgetSpec::Indices(path) => {
            for (i, item) in listed.iter().enumerate() {
                let p = item.position as usize;
                match roles[p] {
                    ROLE_VAL => {
                        return Err(SplitError::IndicesInValidation {
                            path: path.clone(),
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
                            path: path.clone(),
                            position: item.position,
                            first_line,
                            second_line: item.line,
                        });
                    }
                    _ => {
                        roles[p] = ROLE_FORGET;
                        forget_counts[labels[p] as usize] += 1;
                    }
                }
            }
        }
        ForgetSpec::Request(..) => {
            for &p in resolved {
                let p = p as usize;
                match roles[p] {
                    ROLE_VAL => in_val.push(p as u64),
                    ROLE_RETAIN => {
                        roles[p] = ROLE_FORGET;
                        forget_counts[labels[p] as usize] += 1;
                    }
                    _ => {}
                }
            }
            in_val.sort_unstable();
            in_val.dedup();
        }
        _ => {}
    }

    let retain_counts: Vec<u64> = train_counts
        .iter()
        .zip(&forget_counts)
        .map(|(t, f)| t - f)
        .collect();
    let n_forget: u64 = forget_counts.iter().sum();
    if n_forget == 0 && !spec.is_none() {
        return Err(SplitError::EmptyForget {
            spec: spec_text,
            train: n_train,
        });
    }
    if n_forget == n_train {
        return Err(SplitError::EmptyRetain {
            spec: spec_text,
            train: n_train,
        });
    }
    let n_val = n as u64 - n_train;
    Ok((SplitPlan {
        spec: spec_text,
        seed,
        val_fraction,
        num_classes,
        forgotten_classes: forget_class,
        roles,
        counts: [n_val, n_train, n_forget, n_train - n_forget],
        class_counts: [val_counts, train_counts, forget_counts, retain_counts],
        fingerprint: OnceLock::new(),
    }, in_val))
}

/// From this many samples on, [`SplitPlan::positions`] runs in parallel.
const PARALLEL_POSITIONS: usize = 1 << 18;

/// Writes the positions (offset by `first`) of `roles` that belong to `set` into `out`,
/// which holds exactly that many. Every position is written at the cursor, which advances
/// on members (a branch on membership would mispredict once per sample of a random set);
/// the only branch, "is there room", is false only after the last member.
fn compact(roles: &[u8], first: u64, set: SetName, out: &mut [u64]) {
    let len = out.len();
    let mut k = 0usize;
    for (p, &r) in roles.iter().enumerate() {
        if k < len {
            out[k] = first + p as u64;
        }
        k += usize::from(in_set(set, r));
    }
    debug_assert_eq!(k, len, "the set's size does not match its roles");
}

const FINGERPRINT_PREFIX: &[u8] = b"dau-split-v1\n";

/// Feeds one set into the fingerprint hasher.
fn hash_set(hasher: &mut Sha256, name: SetName, len: u64, positions: impl Iterator<Item = u64>) {
    hasher.update(name.as_str().as_bytes());
    hasher.update([0u8]);
    hasher.update(len.to_le_bytes());
    let mut buf = [0u8; 16 * 1024];
    let mut used = 0;
    for p in positions {
        buf[used..used + 8].copy_from_slice(&p.to_le_bytes());
        used += 8;
        if used == buf.len() {
            hasher.update(buf);
            used = 0;
        }
    }
    hasher.update(&buf[..used]);
}

fn hex(digest: &[u8]) -> String {
    let mut out = String::with_capacity(2 * digest.len());
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The split fingerprint of four position arrays (val, train, forget, retain): lowercase hex
/// SHA-256 of this byte string:
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
    hasher.update(FINGERPRINT_PREFIX);
    for (name, positions) in SetName::ALL.iter().zip(sets) {
        hash_set(
            &mut hasher,
            *name,
            positions.len() as u64,
            positions.iter().copied(),
        );
    }
    hex(&hasher.finalize())
}

/// The ascending positions of one set of a plan (see [`SplitPlan::iter`]).
#[derive(Clone, Debug)]
pub struct SetPositions<'a> {
    roles: std::iter::Enumerate<std::slice::Iter<'a, u8>>,
    set: SetName,
    remaining: usize,
}

impl Iterator for SetPositions<'_> {
    type Item = u64;

    #[inline]
    fn next(&mut self) -> Option<u64> {
        if self.remaining == 0 {
            return None;
        }
        let set = self.set;
        let (p, _) = self.roles.find(|(_, &r)| in_set(set, r))?;
        self.remaining -= 1;
        Some(p as u64)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for SetPositions<'_> {}

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
        self.roles.len() as u64
    }

    /// Classes forgotten entirely (`class`/`classes` specs), ascending; empty otherwise.
    #[must_use]
    pub fn forgotten_classes(&self) -> &[u64] {
        &self.forgotten_classes
    }

    /// The ascending positions of one set, without allocating.
    #[must_use]
    pub fn iter(&self, set: SetName) -> SetPositions<'_> {
        SetPositions {
            roles: self.roles.iter().enumerate(),
            set,
            remaining: self.len(set) as usize,
        }
    }

    /// The ascending positions of one set.
    #[must_use]
    pub fn positions(&self, set: SetName) -> Vec<u64> {
        let n = self.len(set) as usize;
        let mut out = vec![0u64; n];
        if self.roles.len() < PARALLEL_POSITIONS {
            compact(&self.roles, 0, set, &mut out);
            return out;
        }
        // Parallel over chunks of the roles: count each chunk's members, then fill each
        // chunk's disjoint slice of the output (the same ascending result).
        let chunk = self.roles.len().div_ceil(rayon::current_num_threads() * 4).max(1 << 14);
        let counts: Vec<usize> = self
            .roles
            .par_chunks(chunk)
            .map(|c| c.iter().filter(|&&r| in_set(set, r)).count())
            .collect();
        let mut slices = Vec::with_capacity(counts.len());
        let mut rest = out.as_mut_slice();
        for &count in &counts {
            let (head, tail) = rest.split_at_mut(count);
            slices.push(head);
            rest = tail;
        }
        self.roles
            .par_chunks(chunk)
            .zip(slices.into_par_iter())
            .enumerate()
            .for_each(|(i, (roles, dst))| compact(roles, (i * chunk) as u64, set, dst));
        out
    }

    /// Whether `position` belongs to `set` (false when it is out of range).
    #[must_use]
    pub fn contains(&self, set: SetName, position: u64) -> bool {
        usize::try_from(position)
            .ok()
            .and_then(|p| self.roles.get(p))
            .is_some_and(|&r| in_set(set, r))
    }

    /// Validation positions, ascending.
    #[must_use]
    pub fn val(&self) -> Vec<u64> {
        self.positions(SetName::Val)
    }

    /// Training-split positions (all − val), ascending.
    #[must_use]
    pub fn train(&self) -> Vec<u64> {
        self.positions(SetName::Train)
    }

    /// Forget positions, ascending.
    #[must_use]
    pub fn forget(&self) -> Vec<u64> {
        self.positions(SetName::Forget)
    }

    /// Retain positions (train − forget), ascending.
    #[must_use]
    pub fn retain(&self) -> Vec<u64> {
        self.positions(SetName::Retain)
    }

    /// The size of one set.
    #[must_use]
    pub fn len(&self, set: SetName) -> u64 {
        self.counts[set.index()]
    }

    /// The size of each set, in [`SetName::ALL`] order.
    #[must_use]
    pub fn counts(&self) -> [(SetName, u64); 4] {
        SetName::ALL.map(|s| (s, self.len(s)))
    }

    /// Per-class sample counts of one set (length `num_classes`).
    #[must_use]
    pub fn class_counts(&self, set: SetName) -> &[u64] {
        &self.class_counts[set.index()]
    }

    /// The split fingerprint (see [`fingerprint`]); computed on first use, then cached.
    pub fn fingerprint(&self) -> &str {
        self.fingerprint.get_or_init(|| {
            let mut hasher = Sha256::new();
            hasher.update(FINGERPRINT_PREFIX);
            for set in SetName::ALL {
                let positions = self
                    .roles
                    .iter()
                    .enumerate()
                    .filter(|(_, &r)| in_set(set, r))
                    .map(|(p, _)| p as u64);
                hash_set(&mut hasher, set, self.len(set), positions);
            }
            hex(&hasher.finalize())
        })
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
