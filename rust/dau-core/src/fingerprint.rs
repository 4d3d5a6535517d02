//! Sample fingerprints: a content hash per sample, and deletion requests resolved by content.
//!
//! A deletion request names data ("these images"), not dataset positions, and positions drift
//! when a dataset is re-exported or reordered. A fingerprint identifies a sample by its bytes.
//!
//! # The algorithm (`blake3-128`), exactly
//!
//! * **Sample fingerprint**: the first 16 bytes (128 bits) of the BLAKE3 hash (unkeyed, default
//!   mode) of the sample's raw bytes. dau hashes a sample's `uint8` pixels in its in-memory
//!   layout, channels first and rows in order (`C × H × W`, row-major); the label is *not*
//!   hashed, so a request needs no labels and a relabelled sample keeps its fingerprint. For
//!   CIFAR these bytes are exactly the 3072-byte row of the pickled batch, for MNIST-style idx
//!   files the 784 bytes of the image record, so `b3sum --length 16` of the stored bytes gives
//!   the same hex string.
//! * **Text form**: 32 lowercase hexadecimal digits (upper case is accepted when reading).
//! * **Dataset digest**: the full 32-byte BLAKE3 hash, in hex, of `"dau-fingerprints-v1\n"`,
//!   the number of samples as u64 little-endian, and the 16-byte fingerprints in position
//!   order. It changes when any sample's content changes, or when samples are reordered.
//!
//! Hashing is parallel over blocks of samples (rayon); the result does not depend on the
//! number of threads. BLAKE3 is a cryptographic hash, so a request cannot be crafted to
//! match a sample it does not hold; 128 bits keep accidental collisions out of reach
//! (about 2^-88 for a billion samples).
//!
//! # Resolution
//!
//! [`resolve`] matches request fingerprints against the dataset's: every position whose
//! fingerprint equals a request item's is a match of that item (duplicated images all match);
//! an item with no match is reported by the caller, never dropped.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

use rayon::prelude::*;

use crate::error::{FingerprintError, FINGERPRINT_HEX_LEN};
use crate::rng::mix64;

/// The fingerprint algorithm's name, as recorded in manifests and fingerprint files.
pub const FINGERPRINT_ALGORITHM: &str = "blake3-128";

/// Bytes of one sample fingerprint.
pub const FINGERPRINT_LEN: usize = 16;

/// One sample fingerprint.
pub type Fingerprint = [u8; FINGERPRINT_LEN];

/// Samples hashed per parallel task (keeps scheduling overhead far below the hashing).
const BLOCK: usize = 256;

const DIGEST_PREFIX: &[u8] = b"dau-fingerprints-v1\n";

/// The fingerprint of one sample's bytes (see the module docs).
#[must_use]
pub fn fingerprint_sample(bytes: &[u8]) -> Fingerprint {
    let hash = blake3::hash(bytes);
    let mut out = [0u8; FINGERPRINT_LEN];
    out.copy_from_slice(&hash.as_bytes()[..FINGERPRINT_LEN]);
    out
}

/// Runs `f` on a pool of `threads` threads, or on rayon's global pool (all cores) for `None`.
fn with_threads<R: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> R + Send,
) -> Result<R, FingerprintError> {
    match threads {
        None => Ok(f()),
        Some(0) => Err(FingerprintError::BadThreads { threads: 0 }),
        Some(t) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .map_err(|_| FingerprintError::BadThreads { threads: t })?;
            Ok(pool.install(f))
        }
    }
}

/// Fingerprints of the samples in `data`, which holds consecutive samples of `sample_len`
/// bytes each; hashed in parallel on `threads` threads (`None`: all cores).
///
/// # Errors
/// [`FingerprintError::EmptySample`] for `sample_len == 0`, [`FingerprintError::Ragged`]
/// when `data` is not a whole number of samples, [`FingerprintError::BadThreads`] for 0.
pub fn fingerprint_samples(
    data: &[u8],
    sample_len: usize,
    threads: Option<usize>,
) -> Result<Vec<Fingerprint>, FingerprintError> {
    if sample_len == 0 {
        return Err(FingerprintError::EmptySample);
    }
    if data.len() % sample_len != 0 {
        return Err(FingerprintError::Ragged {
            len: data.len(),
            sample_len,
        });
    }
    with_threads(threads, || {
        let mut out = vec![[0u8; FINGERPRINT_LEN]; data.len() / sample_len];
        out.par_chunks_mut(BLOCK)
            .zip(data.par_chunks(BLOCK * sample_len))
            .for_each(|(slots, samples)| {
                for (slot, sample) in slots.iter_mut().zip(samples.chunks_exact(sample_len)) {
                    *slot = fingerprint_sample(sample);
                }
            });
        out
    })
}

/// The dataset digest of fingerprints in position order (see the module docs): 64 hex digits.
#[must_use]
pub fn digest(fingerprints: &[Fingerprint]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(DIGEST_PREFIX);
    hasher.update(&(fingerprints.len() as u64).to_le_bytes());
    let mut buf = [0u8; 64 * FINGERPRINT_LEN * 16];
    for block in fingerprints.chunks(buf.len() / FINGERPRINT_LEN) {
        for (dst, fp) in buf.chunks_exact_mut(FINGERPRINT_LEN).zip(block) {
            dst.copy_from_slice(fp);
        }
        hasher.update(&buf[..block.len() * FINGERPRINT_LEN]);
    }
    hasher.finalize().to_hex().to_string()
}

/// A fingerprint as 32 lowercase hex digits.
#[must_use]
pub fn to_hex(fingerprint: &Fingerprint) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(FINGERPRINT_HEX_LEN);
    for b in fingerprint {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Parses 32 hex digits (either case); `None` for anything else.
#[must_use]
pub fn parse_hex(token: &str) -> Option<Fingerprint> {
    let bytes = token.as_bytes();
    if bytes.len() != FINGERPRINT_HEX_LEN {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; FINGERPRINT_LEN];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// One fingerprint read from a file, with its 1-based line number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListedFingerprint {
    /// The fingerprint.
    pub fingerprint: Fingerprint,
    /// 1-based line number in the file.
    pub line: usize,
}

/// Parses the text of a fingerprint file: fingerprints (32 hex digits) separated by
/// whitespace, commas or newlines; `#` starts a comment that runs to the end of the line.
/// A file written by `dau fingerprint` (one per line, in position order) is such a file.
/// Order and duplicates are kept.
///
/// # Errors
/// [`FingerprintError::Malformed`] with the line, or [`FingerprintError::Empty`].
pub fn parse_fingerprints(
    text: &str,
    path: &Path,
) -> Result<Vec<ListedFingerprint>, FingerprintError> {
    let mut out = Vec::new();
    for (i, raw_line) in text.lines().enumerate() {
        let content = raw_line.split_once('#').map_or(raw_line, |(c, _)| c);
        for token in content
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
        {
            let Some(fingerprint) = parse_hex(token) else {
                return Err(FingerprintError::Malformed {
                    path: path.to_owned(),
                    line: i + 1,
                    token: token.chars().take(80).collect(),
                });
            };
            out.push(ListedFingerprint {
                fingerprint,
                line: i + 1,
            });
        }
    }
    if out.is_empty() {
        return Err(FingerprintError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(out)
}

/// Reads and parses a fingerprint file (see [`parse_fingerprints`]).
///
/// # Errors
/// [`FingerprintError::Unreadable`] with the OS error, or a parse error.
pub fn read_fingerprints(path: &Path) -> Result<Vec<ListedFingerprint>, FingerprintError> {
    let text = std::fs::read_to_string(path).map_err(|source| FingerprintError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    parse_fingerprints(&text, path)
}

/// A hasher for fingerprints, which are already uniformly distributed: it folds the 128 bits
/// to 64 and mixes them once (so made-up, low-entropy fingerprints still spread).
#[derive(Default)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u128(&mut self, i: u128) {
        self.0 ^= (i as u64) ^ ((i >> 64) as u64);
    }
}

type FoldMap<V> = HashMap<u128, V, BuildHasherDefault<FoldHasher>>;

/// Matches a request against a dataset's fingerprints: every `(item, position)` with
/// `request[item] == dataset[position]`, sorted by item, then position. Items without a
/// match do not appear; duplicated samples give one pair each. Runs on `threads` threads.
///
/// # Errors
/// [`FingerprintError::BadThreads`] for 0.
pub fn resolve(
    dataset: &[Fingerprint],
    request: &[Fingerprint],
    threads: Option<usize>,
) -> Result<Vec<(u64, u64)>, FingerprintError> {
    // Request items grouped by fingerprint: key -> range of `items`.
    let mut items: Vec<usize> = (0..request.len()).collect();
    items.sort_unstable_by_key(|&i| request[i]);
    let mut groups: FoldMap<(usize, usize)> = FoldMap::default();
    groups.reserve(request.len());
    let mut start = 0;
    while start < items.len() {
        let fp = request[items[start]];
        let mut end = start + 1;
        while end < items.len() && request[items[end]] == fp {
            end += 1;
        }
        groups.insert(u128::from_le_bytes(fp), (start, end));
        start = end;
    }
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<(usize, usize, u64)> = with_threads(threads, || {
        dataset
            .par_chunks(BLOCK * 64)
            .enumerate()
            .flat_map_iter(|(b, block)| {
                let base = (b * BLOCK * 64) as u64;
                let groups = &groups;
                block.iter().enumerate().filter_map(move |(i, fp)| {
                    groups
                        .get(&u128::from_le_bytes(*fp))
                        .map(|&(s, e)| (s, e, base + i as u64))
                })
            })
            .collect()
    })?;
    let mut pairs: Vec<(u64, u64)> = found
        .into_iter()
        .flat_map(|(s, e, p)| items[s..e].iter().map(move |&k| (k as u64, p)))
        .collect();
    pairs.sort_unstable();
    Ok(pairs)
}
