//! Invariants of planned splits, determinism, specs, test positions and manifests.

mod common;

use common::{check_invariants, cyclic_labels, TempFile};
use dau_core::{plan_split, ForgetSpec, SetName, SplitError, SplitPlan};

fn plan(labels: &[i64], c: u64, spec: &str, seed: u64) -> SplitPlan {
    plan_split(labels, c, &ForgetSpec::parse(spec).unwrap(), seed, 0.1).unwrap()
}

#[test]
fn cifar10_like_sizes_match_the_reference_table() {
    let labels = cyclic_labels(50_000, 10);
    let p = plan(&labels, 10, "random:10%", 2);
    check_invariants(&p, &labels);
    assert_eq!(p.counts().map(|(_, n)| n), [5000, 45_000, 4500, 40_500]);
    assert!(p.class_counts(SetName::Val).iter().all(|&n| n == 500));

    let p = plan(&labels, 10, "class:3", 2);
    check_invariants(&p, &labels);
    assert_eq!(p.counts().map(|(_, n)| n), [5000, 45_000, 4500, 40_500]);
    assert_eq!(p.forgotten_classes(), [3]);
    assert_eq!(p.class_counts(SetName::Val)[3], 500);

    let test_labels = cyclic_labels(10_000, 10);
    assert_eq!(p.test_indices(&test_labels, true).unwrap().len(), 9000);
    assert_eq!(p.test_indices(&test_labels, false).unwrap().len(), 10_000);
    assert!(p
        .test_indices(&test_labels, true)
        .unwrap()
        .iter()
        .all(|&i| test_labels[i as usize] != 3));
}

#[test]
fn cifar100_like_class_sizes() {
    let labels = cyclic_labels(50_000, 100);
    let p = plan(&labels, 100, "class:7", 1);
    check_invariants(&p, &labels);
    assert_eq!(p.counts().map(|(_, n)| n), [5000, 45_000, 450, 44_550]);
    let r = plan(&labels, 100, "random:4500", 1);
    assert_eq!(r.forget().len(), 4500);
    assert!(r.forgotten_classes().is_empty());
    // Random forgetting never drops test classes.
    assert_eq!(
        r.test_indices(&cyclic_labels(10_000, 100), true)
            .unwrap()
            .len(),
        10_000
    );
}

#[test]
fn every_spec_kind_satisfies_the_invariants() {
    let labels: Vec<i64> = (0..997).map(|i| (i * 7 + i / 13) % 5).collect();
    for spec in [
        "none",
        "random:1",
        "random:100",
        "random:33.3%",
        "class:0",
        "classes:4,1,4",
    ] {
        let p = plan(&labels, 5, spec, 11);
        check_invariants(&p, &labels);
    }
    let p = plan(&labels, 5, "none", 11);
    assert!(p.forget().is_empty());
    assert_eq!(p.retain(), p.train());
    let p = plan(&labels, 5, "classes:4,1,4", 11);
    assert_eq!(p.spec(), "classes:1,4");
    assert_eq!(p.forgotten_classes(), [1, 4]);
}

#[test]
fn percent_is_floor_of_the_training_split() {
    let labels = cyclic_labels(1000, 4); // 250 per class, 25 val each → train 900
    assert_eq!(plan(&labels, 4, "random:10%", 0).forget().len(), 90);
    assert_eq!(plan(&labels, 4, "random:0.5%", 0).forget().len(), 4);
    assert_eq!(plan(&labels, 4, "random:99.99%", 0).forget().len(), 899);
}

#[test]
fn same_seed_same_plan_other_seed_other_plan() {
    let labels = cyclic_labels(5000, 10);
    let a = plan(&labels, 10, "random:500", 5);
    let b = plan(&labels, 10, "random:500", 5);
    assert_eq!(a, b);
    assert_eq!(a.fingerprint(), b.fingerprint());
    let c = plan(&labels, 10, "random:500", 6);
    assert_ne!(a.val(), c.val());
    assert_ne!(a.forget(), c.forget());
    assert_ne!(a.fingerprint(), c.fingerprint());
}

#[test]
fn validation_does_not_depend_on_the_forget_spec() {
    let labels = cyclic_labels(3000, 6);
    let a = plan(&labels, 6, "none", 8);
    for spec in ["random:10", "class:2", "classes:0,5", "random:50%"] {
        assert_eq!(plan(&labels, 6, spec, 8).val(), a.val(), "{spec}");
    }
}

#[test]
fn zero_val_fraction_keeps_everything_in_train() {
    let labels = cyclic_labels(100, 3);
    let p = plan_split(&labels, 3, &ForgetSpec::RandomCount(5), 1, 0.0).unwrap();
    check_invariants(&p, &labels);
    assert!(p.val().is_empty());
    assert_eq!(p.train().len(), 100);
}

#[test]
fn classes_without_samples_are_fine() {
    let labels = vec![0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2];
    let p = plan(&labels, 5, "class:2", 1);
    check_invariants(&p, &labels);
    assert_eq!(p.class_counts(SetName::Train), [3, 0, 9, 0, 0]);
}

#[test]
fn indices_spec_takes_exactly_the_listed_positions() {
    let labels = cyclic_labels(200, 4);
    let base = plan(&labels, 4, "none", 3);
    let chosen: Vec<u64> = base.train().iter().copied().step_by(7).collect();
    let mut text = String::from("# forget these\n");
    for (i, p) in chosen.iter().rev().enumerate() {
        text.push_str(&p.to_string());
        text.push_str(if i % 3 == 0 { ",\n" } else { " " });
    }
    text.push_str("  # trailing comment\n\n");
    let file = TempFile::new("listed.txt", &text);
    let p = plan(&labels, 4, &format!("indices:{}", file.path.display()), 3);
    check_invariants(&p, &labels);
    assert_eq!(p.forget(), chosen.as_slice());
    assert_eq!(p.val(), base.val());
    assert!(p.forgotten_classes().is_empty());
}

#[test]
fn manifest_round_trips() {
    let labels = cyclic_labels(2000, 10);
    for spec in ["none", "random:10%", "class:9", "classes:1,2", "random:7"] {
        let p = plan_split(
            &labels,
            10,
            &ForgetSpec::parse(spec).unwrap(),
            u64::MAX,
            0.15,
        )
        .unwrap();
        let json = p.to_json();
        let back = SplitPlan::from_json(&json).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.to_json(), json);
    }
}

#[test]
fn manifest_rejects_edited_arrays_with_a_mismatch() {
    let labels = cyclic_labels(100, 2);
    let p = plan(&labels, 2, "random:5", 1);
    let mut v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
    let f = v["forget"].as_array_mut().unwrap();
    f[0] = serde_json::json!(f[0].as_u64().unwrap() + 1);
    let err = SplitPlan::from_json(&v.to_string()).unwrap_err();
    assert!(
        matches!(err, SplitError::FingerprintMismatch { .. }),
        "{err}"
    );
}

#[test]
fn manifest_rejects_inconsistent_content() {
    let labels = cyclic_labels(100, 2);
    let p = plan(&labels, 2, "random:5", 1);
    let good: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
    let edits: Vec<(&str, serde_json::Value)> = vec![
        ("schema_version", serde_json::json!(2)),
        ("num_samples", serde_json::json!(101)),
        ("num_classes", serde_json::json!(0)),
        ("val_fraction", serde_json::json!(1.5)),
        ("spec", serde_json::json!("random:6")),
        ("spec", serde_json::json!("bogus")),
        ("forgotten_classes", serde_json::json!([1])),
        (
            "counts",
            serde_json::json!({"val": 1, "train": 90, "forget": 5, "retain": 85}),
        ),
        ("seed", serde_json::json!(-1)),
    ];
    for (key, value) in edits {
        let mut v = good.clone();
        v[key] = value.clone();
        let err = SplitPlan::from_json(&v.to_string()).unwrap_err();
        assert!(
            matches!(err, SplitError::InvalidManifest { .. }),
            "{key} = {value}: got {err}"
        );
    }
    // A class spec whose forget set is not that class.
    let mut v = good.clone();
    v["spec"] = serde_json::json!("class:1");
    v["forgotten_classes"] = serde_json::json!([1]);
    assert!(matches!(
        SplitPlan::from_json(&v.to_string()),
        Err(SplitError::InvalidManifest { .. })
    ));
    // Malformed JSON.
    for text in ["", "{", "[]", "{\"schema_version\": 1}", "null"] {
        assert!(matches!(
            SplitPlan::from_json(text),
            Err(SplitError::InvalidManifest { .. })
        ));
    }
}
