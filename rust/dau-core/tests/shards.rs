//! Per-set streams and rank sharding of the samplers.

use std::collections::BTreeSet;

use dau_core::{
    permutation, permutation_shard, set_stream, with_replacement, with_replacement_shard,
    SamplerError, SetName,
};
use proptest::prelude::*;

#[test]
fn set_streams_are_distinct() {
    let mut seen = BTreeSet::new();
    for set in SetName::ALL {
        for index in [0u64, 1, 7, (1 << 48) - 1] {
            assert!(seen.insert(set_stream(set, index)), "{set:?} {index}");
        }
    }
    assert!(!seen.contains(&0));
    assert_eq!(set_stream(SetName::Forget, 5), (3 << 48) | 5);
}

#[test]
fn bad_shards_are_errors() {
    for (rank, world) in [(0, 0), (2, 2), (5, 3)] {
        let err = permutation_shard(10, 1, 0, rank, world).unwrap_err();
        assert_eq!(err, SamplerError::BadShard { rank, world_size: world });
        assert!(with_replacement_shard(10, 3, 1, 0, rank, world).is_err());
    }
    assert_eq!(
        permutation_shard(10, 1, 0, 3, 2).unwrap_err().to_string(),
        "rank must lie in [0, world_size) with world_size >= 1, got rank 3 of world_size 2"
    );
    assert!(matches!(
        with_replacement_shard(0, 1, 1, 0, 0, 2),
        Err(SamplerError::EmptyPopulation { .. })
    ));
    assert!(matches!(
        with_replacement_shard(5, u64::MAX, 1, 0, 0, 2),
        Err(SamplerError::TooLarge { .. })
    ));
    assert!(permutation_shard(0, 1, 0, 0, 3).unwrap().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Shards have equal sizes, cover 0..n, overlap only by the wrapped padding, and one rank
    /// is the plain sampler.
    #[test]
    fn permutation_shards_cover_and_are_disjoint(
        n in 1u64..300, world in 1u64..9, seed in any::<u64>(), stream in any::<u64>(),
    ) {
        let per_rank = n.div_ceil(world);
        let mut all = Vec::new();
        for rank in 0..world {
            let shard = permutation_shard(n, seed, stream, rank, world).unwrap();
            prop_assert_eq!(shard.len() as u64, per_rank);
            all.extend(shard);
        }
        let distinct: BTreeSet<u64> = all.iter().copied().collect();
        prop_assert_eq!(distinct, (0..n).collect::<BTreeSet<_>>());
        prop_assert_eq!(all.len() as u64 - n, per_rank * world - n);
        prop_assert_eq!(permutation_shard(n, seed, stream, 0, 1).unwrap(),
                        permutation(n, seed, stream).unwrap());
    }

    /// Interleaving the ranks' draws gives the single-process stream of world × k draws.
    #[test]
    fn with_replacement_shards_interleave_to_the_global_stream(
        n in 1u64..100, k in 0u64..50, world in 1u64..6, seed in any::<u64>(), stream in any::<u64>(),
    ) {
        let global = with_replacement(n, k * world, seed, stream).unwrap();
        for rank in 0..world {
            let shard = with_replacement_shard(n, k, seed, stream, rank, world).unwrap();
            let expected: Vec<u64> = global.iter().copied().skip(rank as usize)
                .step_by(world as usize).collect();
            prop_assert_eq!(shard, expected);
        }
    }
}
