//! Index streams for training loops: epoch shuffles and draws with replacement.
//!
//! Both are pure functions of `(n, seed, stream)`, so a resumed run that asks for epoch `e`
//! again gets the same order. They use the streams [`Stream::Permutation`] and
//! [`Stream::WithReplacement`], independent of the split's validation and forget streams.

use crate::error::SamplerError;
use crate::rng::{Rng, Stream};

/// The largest `n` (or `k`) a sampler accepts: 2^32 indices (32 GiB as `u64`).
pub const MAX_SAMPLER_LEN: u64 = 1 << 32;

fn check_len(what: &'static str, value: u64) -> Result<usize, SamplerError> {
    match usize::try_from(value) {
        Ok(v) if value <= MAX_SAMPLER_LEN => Ok(v),
        _ => Err(SamplerError::TooLarge {
            what,
            value,
            max: MAX_SAMPLER_LEN,
        }),
    }
}

/// A uniformly random permutation of `0..n`: Fisher–Yates from the end over the identity,
/// driven by the generator of `Stream::Permutation(stream)` (use the epoch as `stream`).
///
/// # Errors
/// [`SamplerError::TooLarge`] when `n` exceeds [`MAX_SAMPLER_LEN`].
pub fn permutation(n: u64, seed: u64, stream: u64) -> Result<Vec<u64>, SamplerError> {
    let len = check_len("n", n)?;
    let mut out: Vec<u64> = (0..n).collect();
    debug_assert_eq!(out.len(), len);
    Rng::new(seed, Stream::Permutation(stream)).shuffle(&mut out);
    Ok(out)
}

/// `k` independent uniform draws from `0..n` (with replacement), driven by the generator of
/// `Stream::WithReplacement(stream)`: draw `i` is `below(n)`, in order.
///
/// # Errors
/// [`SamplerError::EmptyPopulation`] when `n == 0 < k`; [`SamplerError::TooLarge`] when `k`
/// exceeds [`MAX_SAMPLER_LEN`].
pub fn with_replacement(n: u64, k: u64, seed: u64, stream: u64) -> Result<Vec<u64>, SamplerError> {
    let len = check_len("k", k)?;
    if n == 0 && k > 0 {
        return Err(SamplerError::EmptyPopulation { k });
    }
    let mut rng = Rng::new(seed, Stream::WithReplacement(stream));
    let mut out = Vec::with_capacity(len);
    out.extend((0..len).map(|_| rng.below(n)));
    Ok(out)
}
