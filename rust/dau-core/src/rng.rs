//! Deterministic, platform-independent random numbers.
//!
//! Everything random in dau (the validation split, the random forget set, epoch shuffles,
//! batches drawn with replacement) comes from this module, so the same seed gives the same
//! result on every platform, compiler and version of dau that keeps `SPLIT_ALGORITHM_VERSION`
//! (see [`crate::plan`]). Only wrapping 64-bit integer arithmetic is used; no floating point.
//!
//! # The algorithm, exactly
//!
//! * **mix64(z)** (the SplitMix64 finaliser, Steele, Lea & Flood 2014):
//!   `z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
//!   return z ^ (z >> 31)` (all products wrapping mod 2^64).
//! * **SplitMix64(state)**: each output does `state += 0x9E3779B97F4A7C15` (wrapping), then
//!   returns `mix64(state)`.
//! * **Stream key**: a stream is a `(domain, index)` pair ([`Stream`]); its 64-bit key is
//!   `mix64(mix64(mix64(seed) ^ domain) ^ index)`. Domains: validation = 1, forget = 2,
//!   permutation = 3 (index = the caller's stream, e.g. the epoch), with-replacement = 4
//!   (index = the caller's stream); validation and forget use index 0.
//! * **Generator**: xoshiro256\*\* (Blackman & Vigna 2018). Its state `s[0..4]` is the first
//!   four outputs of SplitMix64 seeded with the stream key. Each output is
//!   `rotl(s1 * 5, 7) * 9`, followed by the usual state update
//!   `t = s1 << 17; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 45)`.
//! * **Bounded integers** `below(s)`, uniform in `[0, s)` for `s > 0`, by Lemire's
//!   multiply-and-reject method (unbiased): `x = next(); m = x * s` as a 128-bit product,
//!   `lo = m mod 2^64`; if `lo < s`: `t = (2^64 - s) mod s`, and while `lo < t` draw a new `x`
//!   and recompute; return `m >> 64`. So one call consumes one or (rarely) more outputs.
//! * **Partial Fisher–Yates** (drawing `k` of `n` items without replacement, in place):
//!   `for i in 0..k { j = i + below(n - i); swap(a[i], a[j]) }`; the chosen items are `a[0..k]`.
//! * **Permutation** of `0..n`: start from the identity, then
//!   `for i in (1..n).rev() { j = below(i + 1); swap(a[i], a[j]) }`.

/// The SplitMix64 increment (the 64-bit golden ratio).
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function (a bijection of `u64`).
#[inline]
#[must_use]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The SplitMix64 generator; used only to expand a 64-bit key into a xoshiro256\*\* state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose first output is `mix64(seed + GOLDEN_GAMMA)`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next output.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }
}

/// An independent random stream derived from the user's seed (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Carving the validation split (domain 1, index 0).
    Validation,
    /// Drawing a random forget set (domain 2, index 0).
    Forget,
    /// Shuffles: `Permutation(epoch)` (domain 3).
    Permutation(u64),
    /// Draws with replacement: `WithReplacement(stream)` (domain 4).
    WithReplacement(u64),
}

impl Stream {
    /// `(domain, index)` of the stream, as used in the key derivation.
    #[must_use]
    pub fn domain_index(self) -> (u64, u64) {
        match self {
            Stream::Validation => (1, 0),
            Stream::Forget => (2, 0),
            Stream::Permutation(i) => (3, i),
            Stream::WithReplacement(i) => (4, i),
        }
    }

    /// The 64-bit key of this stream for `seed`: `mix64(mix64(mix64(seed) ^ domain) ^ index)`.
    #[must_use]
    pub fn key(self, seed: u64) -> u64 {
        let (domain, index) = self.domain_index();
        mix64(mix64(mix64(seed) ^ domain) ^ index)
    }
}

/// The xoshiro256\*\* generator with Lemire bounded integers (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// The generator of `stream` for `seed`.
    #[must_use]
    pub fn new(seed: u64, stream: Stream) -> Self {
        Self::from_key(stream.key(seed))
    }

    /// A generator whose state is the first four SplitMix64 outputs for `key`.
    #[must_use]
    pub fn from_key(key: u64) -> Self {
        let mut sm = SplitMix64::new(key);
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        Self::from_state(s)
    }

    /// A generator with an explicit state (for tests against published vectors). An all-zero
    /// state would only ever output zeros; it is replaced by the state of key 0.
    #[must_use]
    pub fn from_state(s: [u64; 4]) -> Self {
        if s == [0; 4] {
            return Self::from_key(0);
        }
        Self { s }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform integer in `[0, bound)` (Lemire's method, unbiased). `bound` must be > 0;
    /// `below(0)` returns 0 without consuming anything.
    #[inline]
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let mut m = u128::from(self.next_u64()) * u128::from(bound);
        let mut lo = m as u64;
        if lo < bound {
            let threshold = bound.wrapping_neg() % bound;
            while lo < threshold {
                m = u128::from(self.next_u64()) * u128::from(bound);
                lo = m as u64;
            }
        }
        (m >> 64) as u64
    }

    /// Moves `k` items drawn uniformly without replacement to `items[..k]` (partial
    /// Fisher–Yates). `k` is clamped to `items.len()`.
    pub fn partial_shuffle<T>(&mut self, items: &mut [T], k: usize) {
        let n = items.len();
        for i in 0..k.min(n) {
            let j = i + self.below((n - i) as u64) as usize;
            items.swap(i, j);
        }
    }

    /// Shuffles `items` in place (Fisher–Yates from the end).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}
