//! The generator against published vectors, and the samplers' basic contracts.

use dau_core::rng::{mix64, SplitMix64};
use dau_core::{permutation, with_replacement, Rng, SamplerError, Stream, MAX_SAMPLER_LEN};

#[test]
fn splitmix64_matches_the_reference_vector() {
    // Outputs of the reference C implementation for seed 1234567.
    let mut sm = SplitMix64::new(1_234_567);
    let got: Vec<u64> = (0..5).map(|_| sm.next_u64()).collect();
    assert_eq!(
        got,
        [
            6_457_827_717_110_365_317,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821,
        ]
    );
}

#[test]
fn xoshiro256starstar_matches_the_reference_vector() {
    // Outputs of the reference C implementation from the state [1, 2, 3, 4].
    let mut rng = Rng::from_state([1, 2, 3, 4]);
    let got: Vec<u64> = (0..10).map(|_| rng.next_u64()).collect();
    assert_eq!(
        got,
        [
            11_520,
            0,
            1_509_978_240,
            1_215_971_899_390_074_240,
            1_216_172_134_540_287_360,
            607_988_272_756_665_600,
            16_172_922_978_634_559_625,
            8_476_171_486_693_032_832,
            10_595_114_339_597_558_777,
            2_904_607_092_377_533_576,
        ]
    );
}

#[test]
fn stream_key_is_the_documented_formula() {
    for seed in [0u64, 1, 42, u64::MAX] {
        assert_eq!(Stream::Validation.key(seed), mix64(mix64(mix64(seed) ^ 1)));
        assert_eq!(Stream::Forget.key(seed), mix64(mix64(mix64(seed) ^ 2)));
        assert_eq!(
            Stream::Permutation(7).key(seed),
            mix64(mix64(mix64(seed) ^ 3) ^ 7)
        );
        assert_eq!(
            Stream::WithReplacement(7).key(seed),
            mix64(mix64(mix64(seed) ^ 4) ^ 7)
        );
    }
    let mut sm = SplitMix64::new(Stream::Forget.key(5));
    let state = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
    assert_eq!(Rng::new(5, Stream::Forget), Rng::from_state(state));
}

#[test]
fn streams_differ() {
    let first = |s: Stream| Rng::new(1, s).next_u64();
    let all = [
        first(Stream::Validation),
        first(Stream::Forget),
        first(Stream::Permutation(0)),
        first(Stream::Permutation(1)),
        first(Stream::WithReplacement(0)),
    ];
    for i in 0..all.len() {
        for j in i + 1..all.len() {
            assert_ne!(all[i], all[j], "streams {i} and {j} collide");
        }
    }
}

#[test]
fn below_stays_in_range_and_is_roughly_uniform() {
    let mut rng = Rng::new(3, Stream::Permutation(0));
    assert_eq!(rng.below(0), 0);
    assert_eq!(rng.below(1), 0);
    let mut hist = [0u32; 6];
    for _ in 0..60_000 {
        hist[rng.below(6) as usize] += 1;
    }
    for h in hist {
        assert!((9_400..10_600).contains(&h), "{hist:?}");
    }
    // A bound close to 2^64 forces the rejection path now and then.
    let big = u64::MAX / 3 * 2;
    for _ in 0..1000 {
        assert!(rng.below(big) < big);
    }
}

#[test]
fn permutation_is_a_permutation_and_reproducible() {
    for n in [0u64, 1, 2, 17, 1000] {
        let p = permutation(n, 9, 4).unwrap();
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..n).collect::<Vec<_>>());
        assert_eq!(p, permutation(n, 9, 4).unwrap());
    }
    assert_ne!(
        permutation(100, 9, 4).unwrap(),
        permutation(100, 9, 5).unwrap()
    );
    assert_ne!(
        permutation(100, 9, 4).unwrap(),
        permutation(100, 10, 4).unwrap()
    );
}

#[test]
fn permutation_golden() {
    assert_eq!(permutation(10, 42, 0).unwrap(), GOLDEN_PERMUTATION);
    assert_eq!(
        with_replacement(10, 10, 42, 0).unwrap(),
        GOLDEN_WITH_REPLACEMENT
    );
}

// Checked against an independent Python implementation of the documented algorithm.
const GOLDEN_PERMUTATION: [u64; 10] = [8, 1, 2, 5, 9, 6, 3, 0, 4, 7];
const GOLDEN_WITH_REPLACEMENT: [u64; 10] = [0, 5, 0, 7, 5, 4, 5, 6, 3, 5];

#[test]
fn with_replacement_contract() {
    let d = with_replacement(7, 500, 1, 2).unwrap();
    assert_eq!(d.len(), 500);
    assert!(d.iter().all(|&x| x < 7));
    assert_eq!(d, with_replacement(7, 500, 1, 2).unwrap());
    assert!(with_replacement(0, 0, 1, 2).unwrap().is_empty());
}

#[test]
fn sampler_error_empty_population() {
    assert_eq!(
        with_replacement(0, 3, 1, 2),
        Err(SamplerError::EmptyPopulation { k: 3 })
    );
    let msg = with_replacement(0, 3, 1, 2).unwrap_err().to_string();
    assert!(msg.contains("empty population"), "{msg}");
}

#[test]
fn sampler_error_too_large() {
    let too_big = MAX_SAMPLER_LEN + 1;
    assert!(matches!(
        permutation(too_big, 1, 0),
        Err(SamplerError::TooLarge { what: "n", .. })
    ));
    assert!(matches!(
        with_replacement(5, too_big, 1, 0),
        Err(SamplerError::TooLarge { what: "k", .. })
    ));
}
