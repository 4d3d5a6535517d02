//! Plans large enough for the parallel passes: the plans of the earlier, sequential
//! implementation (their fingerprints, recorded from it) whatever the number of threads, set
//! extraction equal to the sequential iterator over the roles, and the first bad label found.

use dau_core::rng::mix64;
use dau_core::{plan_split, ForgetSpec, SetName, SplitError, SplitPlan};

/// `n` labels in `0..c`, pseudo-random (or cyclic) but fixed.
fn labels(n: u64, c: u64, cyclic: bool) -> Vec<i64> {
    (0..n)
        .map(|i| (if cyclic { i * 2_654_435_761 } else { mix64(i) } % c) as i64)
        .collect()
}

fn plan(labels: &[i64], c: u64, spec: &str, seed: u64, val_fraction: f64) -> SplitPlan {
    plan_split(
        labels,
        c,
        &ForgetSpec::parse(spec).unwrap(),
        seed,
        val_fraction,
    )
    .unwrap()
}

#[test]
fn parallel_positions_match_the_roles() {
    let labels = labels(700_001, 97, true);
    for spec in ["random:10%", "class:3", "none"] {
        let plan = plan(&labels, 97, spec, 5, 0.1);
        for set in SetName::ALL {
            let parallel = plan.positions(set);
            let sequential: Vec<u64> = plan.iter(set).collect();
            assert_eq!(
                parallel.len() as u64,
                plan.len(set),
                "{spec} {}",
                set.as_str()
            );
            assert_eq!(parallel, sequential, "{spec} {}", set.as_str());
            let mut signed = vec![-1i64; parallel.len()];
            plan.positions_into(set, &mut signed);
            assert!(signed.iter().zip(&parallel).all(|(&a, &b)| a as u64 == b));
        }
    }
}

/// (samples, classes, cyclic labels, spec, seed, val_fraction, fingerprint of the plan).
#[rustfmt::skip]
const RECORDED: &[(u64, u64, bool, &str, u64, f64, &str)] = &[
    (1_281_167, 1000, false, "random:10%", 1, 0.1,
     "d67d667c605576cdc96f20b9818bf95c593758444eb241a86e7cb97fb93aa401"),
    (1_281_167, 1000, false, "class:7", 1, 0.1,
     "341985b8cefb93dc5e8cd7f45b58e84ded3537412dd3bee1b26c8aa624a635ad"),
    (1_281_167, 1000, false, "classes:3,999", 2, 0.1,
     "4c98e0c41070e16e171c3bc7ee4643f09e3c4f11bc6c89595f1c1c53e71a05b0"),
    (1_281_167, 1000, false, "none", 3, 0.05,
     "48a3b45161c958249661214fc48f9c40bb1745c418185963ffa531d967ae1f68"),
    (700_001, 97, true, "random:1000", 5, 0.25,
     "0fada20da9a2684cf027310d4bdf7897a1e2fe5934ffbf473301ac8024dec6f6"),
    (600_000, 2, false, "random:50%", 6, 0.3,
     "038d0b469a132a09c2541c26395be6dda54da8fb13c0d53166e8621126967679"),
    (300_000, 100_000, false, "random:7", 7, 0.5,
     "a22771b0f4a88dbebe9baeff3db6d3d5fd4191f45e98116017319c8a0a2fd81c"),
    (400_000, 1500, true, "class:1000", 8, 0.1,
     "7796c6a652ff819460673237aa10c6552b0d1c62e7f7e15402fbfc07dc99d101"),
];

#[test]
fn large_plans_match_the_sequential_algorithm() {
    for &(n, c, cyclic, spec, seed, val_fraction, fingerprint) in RECORDED {
        let labels = labels(n, c, cyclic);
        let plans = [1, 4].map(|threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| plan(&labels, c, spec, seed, val_fraction))
        });
        for set in SetName::ALL {
            let mut counts = vec![0u64; c as usize];
            for p in plans[0].iter(set) {
                counts[labels[p as usize] as usize] += 1;
            }
            assert_eq!(
                plans[0].class_counts(set),
                counts,
                "{n} {c} {spec}: {}",
                set.as_str()
            );
        }
        assert_eq!(plans[0].fingerprint(), fingerprint, "{n} {c} {spec}");
        assert_eq!(plans[1], plans[0], "{n} {c} {spec}: 1 and 4 threads");
    }
}

#[test]
fn the_first_bad_label_is_reported() {
    let mut labels = labels(700_001, 97, true);
    labels[650_000] = 97;
    labels[400_000] = -1;
    let err = plan_split(&labels, 97, &ForgetSpec::parse("none").unwrap(), 1, 0.1).unwrap_err();
    assert!(
        matches!(
            err,
            SplitError::LabelOutOfRange {
                position: 400_000,
                value: -1,
                ..
            }
        ),
        "{err}"
    );
}
