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
//! so planning touches little memory: O(N) time, a bit per sample of scratch (4 bytes per
//! training sample more for `random`). The draws pick ranks (the `r`-th ascending position
//! of a class, of the training split), which passes over the labels turn into positions;
//! the passes run in parallel over chunks of the samples for large training sets.

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

/// From this many samples on, the passes over the samples run in parallel.
const PARALLEL_SAMPLES: usize = 1 << 18;

/// The chunk length of a pass over `n` samples that keeps `counters` counters per chunk:
/// all of them below [`PARALLEL_SAMPLES`], else about four chunks per thread of at least
/// 2^14 samples and 16 samples per counter (so the counters cost at most 1/16 of a pass),
/// whole blocks of 64 (see [`forget_chunk`]).
fn chunk_len(n: usize, counters: usize) -> usize {
    if n < PARALLEL_SAMPLES {
        return n.max(1);
    }
    n.div_ceil(rayon::current_num_threads() * 4)
        .max(1 << 14)
        .max(16 * counters)
        .next_multiple_of(64)
}

/// The class histogram of each chunk of `chunk` labels.
///
/// # Errors
/// [`SplitError::LabelOutOfRange`] for the first label outside `[0, num_classes)`.
fn class_histograms(
    labels: &[i64],
    num_classes: u64,
    chunk: usize,
) -> Result<Vec<Vec<usize>>, SplitError> {
    let counted: Vec<Result<Vec<usize>, usize>> = labels
        .par_chunks(chunk)
        .enumerate()
        .map(|(i, part)| {
            let mut counts = vec![0usize; num_classes as usize];
            for (p, &value) in part.iter().enumerate() {
                match usize::try_from(value).ok().and_then(|c| counts.get_mut(c)) {
                    Some(slot) => *slot += 1,
                    None => return Err(i * chunk + p),
                }
            }
            Ok(counts)
        })
        .collect();
    // In chunk order, so the error names the first bad position.
    counted
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|position| SplitError::LabelOutOfRange {
            what: "training labels",
            position,
            value: labels[position],
            num_classes,
        })
}

/// A position type: `u32` for scratch buffers when the training set allows it (half the
/// memory traffic; the draws do not depend on the choice), `u64` and `i64` for output.
trait Pos: Copy + Send {
    fn from_usize(i: usize) -> Self;
    fn index(self) -> usize;
}

macro_rules! impl_pos {
    ($($t:ty),*) => {$(
        impl Pos for $t {
            #[inline]
            fn from_usize(i: usize) -> Self {
                i as $t
            }
            #[inline]
            fn index(self) -> usize {
                self as usize
            }
        }
    )*};
}

impl_pos!(u32, u64, i64);

/// Whether bit `i` of `words` is set.
#[inline]
fn bit(words: &[u64], i: usize) -> bool {
    words[i / 64] >> (i % 64) & 1 == 1
}

/// 64 bits of `words` from bit `start` on (zeros past the end).
#[inline]
fn bits_from(words: &[u64], start: usize) -> u64 {
    let (word, shift) = (start / 64, start % 64);
    let low = words.get(word).map_or(0, |&w| w >> shift);
    match words.get(word + 1) {
        Some(&next) if shift > 0 => low | (next << (64 - shift)),
        _ => low,
    }
}

/// The low bits of `bits`, in order, at the set bits of `mask` (a parallel bit deposit):
/// inserts a zero bit at each clear bit of `mask`, from the lowest.
#[inline]
fn deposit(mut bits: u64, mask: u64) -> u64 {
    let mut gaps = !mask;
    while gaps != 0 {
        let below = (gaps & gaps.wrapping_neg()) - 1;
        bits = (bits & below) | ((bits & !below) << 1);
        gaps &= gaps - 1;
    }
    bits
}

/// The training samples among up to 64 `roles`: bit `i` set unless `roles[i]` is validation
/// (clear past the roles). 8 roles at a time: validation bytes become zero, each byte's high
/// bit is then set if it is not zero (the addition carries within bytes only), and a
/// multiplication gathers the 8 high bits into the top byte.
#[inline]
fn train_mask(roles: &[u8]) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let block: [u8; 64] = roles.try_into().unwrap_or_else(|_| {
        let mut padded = [ROLE_VAL; 64];
        padded[..roles.len()].copy_from_slice(roles);
        padded
    });
    let mut val = 0;
    for (k, eight) in block.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(eight.try_into().expect("8 roles"));
        let x = word ^ (u64::from(ROLE_VAL) * 0x0101_0101_0101_0101);
        let zero = !(((x & LOW7) + LOW7) | x) & !LOW7;
        val |= ((zero >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * k);
    }
    !val
}

/// A fixed-size set of small integers, one bit each.
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Self {
        Self(vec![0; len.div_ceil(64)])
    }

    #[inline]
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
}

/// Step 1, the validation draws, as class-major ranks: a sample's class-major rank is the
/// number of samples of smaller classes plus its rank among the ascending positions of its
/// class. Drawing ranks `0..m` by the documented partial Fisher–Yates draws the same
/// members as drawing the positions themselves, with scratch for one class instead of all
/// positions sorted by class.
fn draw_val<P: Pos>(class_sizes: &[u64], val_fraction: f64, seed: u64) -> Bits {
    let mut is_val = Bits::new(class_sizes.iter().sum::<u64>() as usize);
    let mut rng = Rng::new(seed, Stream::Validation);
    let mut ranks: Vec<P> = Vec::new();
    let mut first = 0;
    for &m in class_sizes {
        let k = val_count(val_fraction, m) as usize;
        if k > 0 {
            ranks.clear();
            ranks.extend((0..m as usize).map(P::from_usize));
            rng.partial_shuffle(&mut ranks, k);
            for &r in &ranks[..k] {
                is_val.insert(first + r.index());
            }
        }
        first += m as usize;
    }
    is_val
}

/// Step 3 for `random`: `k` of the `n_train` ranks of the ascending train positions (so the
/// documented draws from those positions).
fn draw_forget<P: Pos>(n_train: usize, k: usize, seed: u64) -> Bits {
    let mut ranks: Vec<P> = (0..n_train).map(P::from_usize).collect();
    Rng::new(seed, Stream::Forget).partial_shuffle(&mut ranks, k);
    let mut is_forgotten = Bits::new(n_train);
    for &r in &ranks[..k] {
        is_forgotten.insert(r.index());
    }
    is_forgotten
}

/// Steps 2 and 3 (for classes) for one chunk of samples: writes the role of each of its
/// `labels` into `roles`, validation if its class-major rank is in `is_val`, else the role of
/// its class's training samples (`role_of[class][0]`; `role_of[class][1]` is validation: a
/// lookup, as a branch would mispredict on every validation sample). `next` holds the
/// class-major rank of the chunk's next sample of each class. Returns the number of
/// validation samples.
fn chunk_roles(
    labels: &[i64],
    roles: &mut [u8],
    next: &mut [usize],
    is_val: &[u64],
    role_of: &[[u8; 2]],
) -> usize {
    let mut val = 0;
    for (role, &label) in roles.iter_mut().zip(labels) {
        let class = label as usize;
        let in_val = bit(is_val, next[class]);
        next[class] += 1;
        val += usize::from(in_val);
        *role = role_of[class][usize::from(in_val)];
    }
    val
}

/// Step 3 for `random`, for one chunk of samples: forgets each training sample whose train
/// rank (`train_rank` for the chunk's first) is in `is_forgotten`. Returns the number
/// forgotten per class. Works on 64 samples at a time: their training samples take the next
/// bits of `is_forgotten`, in order.
fn forget_chunk(
    labels: &[i64],
    roles: &mut [u8],
    mut train_rank: usize,
    is_forgotten: &[u64],
    num_classes: usize,
) -> Vec<u64> {
    let mut forgotten = vec![0u64; num_classes];
    for (block, labels) in roles.chunks_mut(64).zip(labels.chunks(64)) {
        let train = train_mask(block);
        let mut forget = deposit(bits_from(is_forgotten, train_rank), train);
        train_rank += train.count_ones() as usize;
        while forget != 0 {
            let i = forget.trailing_zeros() as usize;
            block[i] = ROLE_FORGET; // was retained: `random` forgets no class
            forgotten[labels[i] as usize] += 1;
            forget &= forget - 1;
        }
    }
    forgotten
}

/// The inputs of steps 1 to 3 (all but explicit and requested forget sets).
struct Draw<'a> {
    labels: &'a [i64],
    /// The samples per class.
    class_sizes: &'a [u64],
    /// The size of the train split.
    n_train: usize,
    /// Passes over the samples go in chunks of this many, in parallel.
    chunk: usize,
    /// The class histogram of each chunk (see [`class_histograms`]).
    histograms: Vec<Vec<usize>>,
    val_fraction: f64,
    seed: u64,
    /// `random` forget specs: how many to draw.
    random_forget: Option<usize>,
    /// Per class, the role of its training samples: forget for forgotten classes, else retain.
    train_role: Vec<u8>,
}

impl Draw<'_> {
    /// Steps 1 to 3: the role of every sample; adds the classes of randomly forgotten
    /// samples to `forget_counts`. The draws give ranks; passes over the samples, in chunks
    /// in parallel, give each sample its class-major rank, so its role, then (for `random`)
    /// its train rank.
    fn roles<P: Pos>(self, forget_counts: &mut [u64]) -> Vec<u8> {
        let Draw {
            labels,
            class_sizes,
            n_train,
            chunk,
            mut histograms,
            val_fraction,
            seed,
            random_forget,
            train_role,
        } = self;
        let mut roles = vec![ROLE_RETAIN; labels.len()];
        // The random forget draw needs only the size of the train split (and its stream is
        // independent): it runs beside steps 1 and 2.
        let (is_forgotten, val_per_chunk) = rayon::join(
            || random_forget.map(|k| draw_forget::<P>(n_train, k, seed)),
            || {
                let is_val = draw_val::<P>(class_sizes, val_fraction, seed);
                // Each histogram becomes the class-major rank of its chunk's first sample
                // of each class.
                let mut first = 0;
                for class in 0..class_sizes.len() {
                    for counts in &mut histograms {
                        let count = counts[class];
                        counts[class] = first;
                        first += count;
                    }
                }
                let role_of: Vec<[u8; 2]> = train_role.iter().map(|&r| [r, ROLE_VAL]).collect();
                roles
                    .par_chunks_mut(chunk)
                    .zip(labels.par_chunks(chunk))
                    .zip(histograms)
                    .map(|((roles, labels), mut next)| {
                        chunk_roles(labels, roles, &mut next, &is_val.0, &role_of)
                    })
                    .collect::<Vec<usize>>()
            },
        );

        if let Some(Bits(is_forgotten)) = is_forgotten {
            // Each chunk's first train rank: its first position minus the validation
            // samples before it.
            let mut val_before = 0;
            let first_train_ranks: Vec<usize> = val_per_chunk
                .iter()
                .enumerate()
                .map(|(i, &val)| {
                    let first = i * chunk - val_before;
                    val_before += val;
                    first
                })
                .collect();
            let forgotten_per_chunk: Vec<Vec<u64>> = roles
                .par_chunks_mut(chunk)
                .zip(labels.par_chunks(chunk))
                .zip(first_train_ranks)
                .map(|((roles, labels), first)| {
                    forget_chunk(labels, roles, first, &is_forgotten, class_sizes.len())
                })
                .collect();
            for forgotten in forgotten_per_chunk {
                for (total, count) in forget_counts.iter_mut().zip(forgotten) {
                    *total += count;
                }
            }
        }
        roles
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
    let c = num_classes as usize;
    let chunk = chunk_len(n, c);
    let histograms = class_histograms(labels, num_classes, chunk)?;
    let class_sizes: Vec<u64> = (0..c)
        .map(|k| histograms.iter().map(|counts| counts[k] as u64).sum())
        .collect();
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

    let mut train_role = vec![ROLE_RETAIN; c];
    for &k in &forget_class {
        train_role[k as usize] = ROLE_FORGET;
    }
    let draw = Draw {
        labels,
        class_sizes: &class_sizes,
        n_train: n_train as usize,
        chunk,
        histograms,
        val_fraction,
        seed,
        random_forget: random_forget.map(|k| k as usize),
        train_role,
    };
    let mut forget_counts = vec![0u64; c];
    let mut roles = if u32::try_from(n).is_ok() {
        draw.roles::<u32>(&mut forget_counts)
    } else {
        draw.roles::<u64>(&mut forget_counts)
    };
    let train_counts: Vec<u64> = class_sizes
        .iter()
        .zip(&val_counts)
        .map(|(m, v)| m - v)
        .collect();

    match spec {
        ForgetSpec::Class(_) | ForgetSpec::Classes(_) => {
            for &k in &forget_class {
                forget_counts[k as usize] = train_counts[k as usize];
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

/// The number of `roles` that are members, counted in bytes per block of 255 (which
/// vectorises).
fn count_members(roles: &[u8], member: impl Fn(u8) -> bool) -> usize {
    roles
        .chunks(255)
        .map(|block| usize::from(block.iter().map(|&r| u8::from(member(r))).sum::<u8>()))
        .sum()
}

/// Writes the positions (offset by `first`) of the `roles` that are members into `out`,
/// which holds exactly that many. Every position is written at the cursor, which advances
/// on members (a branch on membership would mispredict once per sample of a random set);
/// the only branch, "is there room", is false only after the last member.
fn compact<P: Pos>(roles: &[u8], first: usize, member: impl Fn(u8) -> bool, out: &mut [P]) {
    let len = out.len();
    let mut k = 0usize;
    for (p, &r) in roles.iter().enumerate() {
        if k < len {
            out[k] = P::from_usize(first + p);
        }
        k += usize::from(member(r));
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
        let mut out = vec![0; self.len(set) as usize];
        self.write_positions(set, &mut out);
        out
    }

    /// Writes the ascending positions of one set into `out` as `i64` (NumPy's index type),
    /// e.g. straight into an array that the caller allocated.
    ///
    /// # Panics
    /// If `out` does not hold exactly [`Self::len`]`(set)` positions.
    pub fn positions_into(&self, set: SetName, out: &mut [i64]) {
        self.write_positions(set, out);
    }

    fn write_positions<P: Pos>(&self, set: SetName, out: &mut [P]) {
        assert_eq!(out.len() as u64, self.len(set), "wrong output length");
        // The loops compile once per set, with its membership test inlined (a test of `set`
        // per sample costs as much as the rest of the loop).
        match set {
            SetName::Val => self.write_members(|r| in_set(SetName::Val, r), out),
            SetName::Train => self.write_members(|r| in_set(SetName::Train, r), out),
            SetName::Forget => self.write_members(|r| in_set(SetName::Forget, r), out),
            SetName::Retain => self.write_members(|r| in_set(SetName::Retain, r), out),
        }
    }

    /// Counts each chunk's members (a quick pass), then fills each chunk's disjoint slice of
    /// `out` in parallel (the same ascending result).
    fn write_members<P: Pos>(&self, member: impl Fn(u8) -> bool + Copy + Sync, out: &mut [P]) {
        let chunk = chunk_len(self.roles.len(), 0);
        let mut slices = Vec::with_capacity(self.roles.len().div_ceil(chunk));
        let mut rest = out;
        for roles in self.roles.chunks(chunk) {
            let (head, tail) = rest.split_at_mut(count_members(roles, member));
            slices.push(head);
            rest = tail;
        }
        self.roles
            .par_chunks(chunk)
            .zip(slices)
            .enumerate()
            .for_each(|(i, (roles, dst))| compact(roles, i * chunk, member, dst));
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
