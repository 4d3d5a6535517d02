//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeSet;

use dau_core::{val_count, SetName, SplitPlan};

/// Labels `0, 1, …, c-1, 0, 1, …` of length `n`.
pub fn cyclic_labels(n: usize, c: i64) -> Vec<i64> {
    (0..n as i64).map(|i| i % c).collect()
}

/// Checks every structural invariant of a plan against its labels.
pub fn check_invariants(plan: &SplitPlan, labels: &[i64]) {
    let n = labels.len() as u64;
    assert_eq!(plan.num_samples(), n);
    for s in SetName::ALL {
        let set = plan.positions(s);
        assert!(
            set.windows(2).all(|w| w[0] < w[1]),
            "{} not strictly ascending",
            s.as_str()
        );
        assert!(set.iter().all(|&p| p < n));
    }
    let val: BTreeSet<u64> = plan.val().iter().copied().collect();
    let train: BTreeSet<u64> = plan.train().iter().copied().collect();
    let forget: BTreeSet<u64> = plan.forget().iter().copied().collect();
    let retain: BTreeSet<u64> = plan.retain().iter().copied().collect();
    assert!(val.is_disjoint(&train));
    assert!(val.is_disjoint(&forget));
    assert!(val.is_disjoint(&retain));
    assert!(forget.is_disjoint(&retain));
    assert_eq!(
        val.union(&train).copied().collect::<BTreeSet<_>>(),
        (0..n).collect()
    );
    assert_eq!(
        forget.union(&retain).copied().collect::<BTreeSet<_>>(),
        train
    );
    assert!(!retain.is_empty());

    // Per-class counts, and validation proportions exact per class.
    let c = plan.num_classes() as usize;
    let mut sizes = vec![0u64; c];
    for &l in labels {
        sizes[l as usize] += 1;
    }
    for s in SetName::ALL {
        let mut counted = vec![0u64; c];
        for p in plan.iter(s) {
            counted[labels[p as usize] as usize] += 1;
        }
        assert_eq!(
            plan.class_counts(s),
            counted.as_slice(),
            "class counts of {}",
            s.as_str()
        );
    }
    for (k, &m) in sizes.iter().enumerate() {
        assert_eq!(
            plan.class_counts(SetName::Val)[k],
            val_count(plan.val_fraction(), m),
            "val count of class {k}"
        );
    }
    // Forgotten classes are forgotten entirely (in the training split).
    for &k in plan.forgotten_classes() {
        let k = k as usize;
        assert_eq!(plan.class_counts(SetName::Retain)[k], 0);
        assert_eq!(
            plan.class_counts(SetName::Forget)[k],
            plan.class_counts(SetName::Train)[k]
        );
    }
    for s in SetName::ALL {
        assert_eq!(plan.iter(s).len() as u64, plan.len(s));
        assert_eq!(plan.iter(s).collect::<Vec<_>>(), plan.positions(s));
        assert!(plan.iter(s).all(|p| plan.contains(s, p)));
    }
    assert!(!plan.contains(SetName::Train, n));
    assert_eq!(plan.fingerprint().len(), 64);
    assert_eq!(
        plan.fingerprint(),
        dau_core::fingerprint(&SetName::ALL.map(|s| plan.positions(s)))
    );
}

/// A file in the temporary directory, removed when dropped.
pub struct TempFile {
    /// Its path.
    pub path: std::path::PathBuf,
}

impl TempFile {
    /// Writes `text` to a fresh file named after `name`, the process and a counter.
    pub fn new(name: &str, text: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("dau-core-test-{}-{n}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Self { path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
