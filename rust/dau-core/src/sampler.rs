//! Index streams for training loops: epoch shuffles and draws with replacement.
//!
//! Both are pure functions of `(n, seed, stream)`, so a resumed run that asks for epoch `e`
//! again gets the same order. They use the streams [`Stream::Permutation`] and
//! [`Stream::WithReplacement`], independent of the split's validation and forget streams.
//!
//! # Streams per set
//!
//! Loops that sample several sets (DAU draws forget, validation and retain batches) give each
//! set its own stream index with [`set_stream`]: `stream = (code(set) << 48) | index`, with
//! codes val = 1, train = 2, forget = 3, retain = 4 and `index < 2^48` (the epoch or step).
//! Different sets never share a stream, and index 0 of no set is the plain stream 0.
//!
//! # Sharding by rank (distributed runs)
//!
//! * [`permutation_shard`]: the permutation of `0..n` for `(seed, stream)` (identical on every
//!   rank), extended by wrapping around to `m = ⌈n / world_size⌉ × world_size` entries
//!   (entry `i` is `perm[i mod n]`), and rank `r` takes entries `r, r + world_size, …`. Every
//!   rank gets `⌈n / world_size⌉` indices, the ranks together cover `0..n`, and they are
//!   disjoint except for the `m − n` wrapped entries (as `torch.utils.data.DistributedSampler`
//!   with `drop_last=False`).
//! * [`with_replacement_shard`]: rank `r` gets draws `r, r + world_size, …` of the
//!   with-replacement stream, `k` of them: the ranks together see exactly the `k × world_size`
//!   draws one process with `world_size` times the batch would.
//!
//! `world_size = 1, rank = 0` gives the unsharded samplers' output.

use crate::error::SamplerError;
use crate::plan::SetName;
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

/// The stream index of `set`'s sampler for `index` (an epoch or step): see the module docs.
/// `index` is reduced modulo 2^48.
#[must_use]
pub fn set_stream(set: SetName, index: u64) -> u64 {
    let code = match set {
        SetName::Val => 1u64,
        SetName::Train => 2,
        SetName::Forget => 3,
        SetName::Retain => 4,
    };
    (code << 48) | (index & ((1 << 48) - 1))
}

fn check_shard(rank: u64, world_size: u64) -> Result<(), SamplerError> {
    if world_size == 0 || rank >= world_size {
        return Err(SamplerError::BadShard { rank, world_size });
    }
    Ok(())
}

/// Rank `rank`'s share of the epoch permutation of `0..n` (see the module docs).
///
/// # Errors
/// [`SamplerError::BadShard`] unless `rank < world_size`; [`SamplerError::TooLarge`] for `n`
/// above [`MAX_SAMPLER_LEN`].
pub fn permutation_shard(
    n: u64,
    seed: u64,
    stream: u64,
    rank: u64,
    world_size: u64,
) -> Result<Vec<u64>, SamplerError> {
    check_shard(rank, world_size)?;
    let perm = permutation(n, seed, stream)?;
    if world_size == 1 {
        return Ok(perm);
    }
    let per_rank = n.div_ceil(world_size);
    Ok((0..per_rank)
        .map(|i| perm[((i * world_size + rank) % n) as usize])
        .collect())
}

/// Rank `rank`'s `k` draws with replacement from `0..n` (see the module docs).
///
/// # Errors
/// As [`with_replacement`] (for `k × world_size` draws), and [`SamplerError::BadShard`].
pub fn with_replacement_shard(
    n: u64,
    k: u64,
    seed: u64,
    stream: u64,
    rank: u64,
    world_size: u64,
) -> Result<Vec<u64>, SamplerError> {
    check_shard(rank, world_size)?;
    let total = k.checked_mul(world_size).ok_or(SamplerError::TooLarge {
        what: "k × world_size",
        value: u64::MAX,
        max: MAX_SAMPLER_LEN,
    })?;
    let len = check_len("k × world_size", total)?;
    if n == 0 && k > 0 {
        return Err(SamplerError::EmptyPopulation { k });
    }
    let mut rng = Rng::new(seed, Stream::WithReplacement(stream));
    let mut out = Vec::with_capacity(len / world_size as usize);
    for i in 0..total {
        let draw = rng.below(n);
        if i % world_size == rank {
            out.push(draw);
        }
    }
    Ok(out)
}
