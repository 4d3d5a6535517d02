//! One test per error variant: the right variant, and a message that says what to fix.

mod common;

use common::{cyclic_labels, TempFile};
use dau_core::{plan_split, ForgetSpec, SetName, SplitError, SplitPlan, EXPECTED_SPECS};

fn plan_err(labels: &[i64], c: u64, spec: &str, val_fraction: f64) -> SplitError {
    let spec = ForgetSpec::parse(spec).unwrap();
    plan_split(labels, c, &spec, 1, val_fraction).unwrap_err()
}

fn spec_err(spec: &str) -> SplitError {
    ForgetSpec::parse(spec).unwrap_err()
}

fn has(err: &SplitError, parts: &[&str]) {
    let msg = err.to_string();
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
}

#[test]
fn empty_labels() {
    let e = plan_err(&[], 10, "none", 0.1);
    assert!(matches!(e, SplitError::EmptyLabels));
    has(&e, &["empty"]);
}

#[test]
fn zero_classes() {
    let e = plan_err(&[0, 1], 0, "none", 0.1);
    assert!(matches!(e, SplitError::ZeroClasses));
    has(&e, &["num_classes", "0"]);
}

#[test]
fn too_many_classes() {
    let e = plan_err(&[0, 1], 5_000_000, "none", 0.1);
    assert!(matches!(
        e,
        SplitError::TooManyClasses {
            num_classes: 5_000_000,
            ..
        }
    ));
    has(&e, &["5000000", "at most"]);
}

#[test]
fn label_out_of_range() {
    let e = plan_err(&[0, 1, 2, 10, -1], 10, "none", 0.1);
    assert!(matches!(
        e,
        SplitError::LabelOutOfRange {
            position: 3,
            value: 10,
            ..
        }
    ));
    has(&e, &["position 3", "label 10", "[0, 10)"]);
    let e = plan_err(&[0, -1], 10, "none", 0.1);
    assert!(matches!(
        e,
        SplitError::LabelOutOfRange {
            position: 1,
            value: -1,
            ..
        }
    ));
}

#[test]
fn test_label_out_of_range() {
    let labels = cyclic_labels(100, 4);
    let p = plan_split(&labels, 4, &ForgetSpec::Class(1), 1, 0.1).unwrap();
    let e = p.test_indices(&[0, 1, 7], true).unwrap_err();
    assert!(matches!(
        e,
        SplitError::LabelOutOfRange {
            what: "test labels",
            position: 2,
            ..
        }
    ));
    has(&e, &["test labels", "position 2", "label 7"]);
}

#[test]
fn invalid_val_fraction() {
    for f in [-0.1, 1.0, 1.5, f64::NAN, f64::INFINITY] {
        let e = plan_err(&[0, 1], 2, "none", f);
        assert!(matches!(e, SplitError::InvalidValFraction { .. }), "{f}");
        has(&e, &["val_fraction", "[0, 1)"]);
    }
}

#[test]
fn unknown_spec_kind() {
    let e = spec_err("clas:3");
    assert!(matches!(e, SplitError::UnknownSpecKind { ref kind, .. } if kind == "clas"));
    assert_eq!(
        e.to_string(),
        format!("forget spec 'clas:3': unknown kind 'clas'; expected one of {EXPECTED_SPECS}")
    );
    for s in ["", "random", "Random:3", "3", "none:"] {
        let _ = ForgetSpec::parse(s).unwrap_err();
    }
}

#[test]
fn malformed_spec() {
    for (spec, got) in [
        ("random:abc", "abc"),
        ("random:0.1", "0.1"),
        ("random:-3", "-3"),
        ("random:", ""),
        ("random", ""),
        ("random:%", "%"),
        ("random:1e2%", "1e2%"),
        ("random:nan%", "nan%"),
        ("class:x", "x"),
        ("class:3,5", "3,5"),
        ("classes:3,,5", ""),
        ("classes:", ""),
        ("indices:", ""),
        ("indices", ""),
        ("none:3", "3"),
    ] {
        let e = spec_err(spec);
        match &e {
            SplitError::MalformedSpec { got: g, .. } => assert_eq!(g, got, "{spec}"),
            other => panic!("{spec}: {other}"),
        }
        has(&e, &["forget spec", "expected"]);
    }
    has(&spec_err("class:3,5"), &["classes:3,5"]);
}

#[test]
fn fraction_out_of_range() {
    for spec in ["random:0%", "random:150%", "random:-5%", "random:100.5%"] {
        let e = spec_err(spec);
        assert!(
            matches!(e, SplitError::FractionOutOfRange { .. }),
            "{spec}: {e}"
        );
        has(&e, &["(0, 100]"]);
    }
    assert_eq!(
        ForgetSpec::parse("random:100%").unwrap(),
        ForgetSpec::RandomPercent(100.0)
    );
}

#[test]
fn class_out_of_range() {
    let labels = cyclic_labels(100, 10);
    for spec in ["class:10", "class:-1", "classes:2,12"] {
        let e = plan_err(&labels, 10, spec, 0.1);
        assert!(
            matches!(
                e,
                SplitError::ClassOutOfRange {
                    num_classes: 10,
                    ..
                }
            ),
            "{spec}"
        );
        has(&e, &["0..=9", "out of range"]);
    }
}

#[test]
fn forget_count_too_large() {
    let labels = cyclic_labels(100, 10); // 10 val, 90 train
    let e = plan_err(&labels, 10, "random:91", 0.1);
    assert!(matches!(
        e,
        SplitError::ForgetCountTooLarge {
            requested: 91,
            available: 90,
            ..
        }
    ));
    has(&e, &["91", "90"]);
}

#[test]
fn indices_file_unreadable() {
    let e = plan_err(&[0, 1], 2, "indices:/nonexistent/dau/forget.txt", 0.1);
    assert!(matches!(e, SplitError::IndicesFileUnreadable { .. }));
    has(&e, &["/nonexistent/dau/forget.txt", "No such file"]);
}

#[test]
fn indices_non_integer() {
    let file = TempFile::new("nonint.txt", "1 2\n# ok\n3, x4\n");
    let e = plan_err(
        &cyclic_labels(10, 2),
        2,
        &format!("indices:{}", file.path.display()),
        0.0,
    );
    assert!(matches!(e, SplitError::IndicesNonInteger { line: 3, ref token, .. } if token == "x4"));
    has(&e, &["line 3", "'x4'", "nonint.txt"]);
}

#[test]
fn indices_out_of_range() {
    let file = TempFile::new("range.txt", "1\n2\n10\n");
    let e = plan_err(
        &cyclic_labels(10, 2),
        2,
        &format!("indices:{}", file.path.display()),
        0.0,
    );
    assert!(matches!(e, SplitError::IndicesOutOfRange { line: 3, .. }));
    has(&e, &["line 3", "position 10", "[0, 10)"]);
    let file = TempFile::new("negative.txt", "-1\n");
    let e = plan_err(
        &cyclic_labels(10, 2),
        2,
        &format!("indices:{}", file.path.display()),
        0.0,
    );
    assert!(matches!(e, SplitError::IndicesOutOfRange { line: 1, .. }));
    let file = TempFile::new("huge.txt", "99999999999999999999999\n");
    let e = plan_err(
        &cyclic_labels(10, 2),
        2,
        &format!("indices:{}", file.path.display()),
        0.0,
    );
    assert!(matches!(e, SplitError::IndicesOutOfRange { line: 1, .. }));
}

#[test]
fn indices_in_validation() {
    let labels = cyclic_labels(100, 2);
    let p = plan_split(&labels, 2, &ForgetSpec::None, 1, 0.1).unwrap();
    let v = p.val()[0];
    let file = TempFile::new("inval.txt", &format!("{}\n{v}\n", p.train()[0]));
    let e = plan_err(&labels, 2, &format!("indices:{}", file.path.display()), 0.1);
    assert!(
        matches!(e, SplitError::IndicesInValidation { line: 2, position, .. } if position == v)
    );
    has(&e, &["line 2", &format!("position {v}"), "validation"]);
}

#[test]
fn duplicate_position() {
    let file = TempFile::new("dup.txt", "1 2\n3\n2\n");
    let e = plan_err(
        &cyclic_labels(10, 2),
        2,
        &format!("indices:{}", file.path.display()),
        0.0,
    );
    assert!(matches!(
        e,
        SplitError::DuplicatePosition {
            position: 2,
            first_line: 1,
            second_line: 3,
            ..
        }
    ));
    has(&e, &["position 2", "twice", "lines 1 and 3"]);
}

#[test]
fn empty_retain() {
    let labels = cyclic_labels(100, 10);
    let e = plan_err(&labels, 10, "random:90", 0.1);
    assert!(matches!(e, SplitError::EmptyRetain { train: 90, .. }));
    has(&e, &["empty retain"]);
    let e = plan_err(&labels, 10, "random:100%", 0.1);
    assert!(matches!(e, SplitError::EmptyRetain { .. }));
    let e = plan_err(&[0, 0, 1], 2, "classes:0,1", 0.0);
    assert!(matches!(e, SplitError::EmptyRetain { .. }));
}

#[test]
fn empty_forget() {
    let labels = cyclic_labels(100, 10);
    for spec in ["random:0", "random:0.5%"] {
        let e = plan_err(&labels, 10, spec, 0.1);
        assert!(matches!(e, SplitError::EmptyForget { .. }), "{spec}: {e}");
        has(&e, &["no sample", "none"]);
    }
    let e = plan_err(&[0, 0, 1], 3, "class:2", 0.1);
    assert!(matches!(e, SplitError::EmptyForget { .. }));
    let file = TempFile::new("empty.txt", "# nothing\n");
    let e = plan_err(
        &labels,
        10,
        &format!("indices:{}", file.path.display()),
        0.1,
    );
    assert!(matches!(e, SplitError::EmptyForget { .. }));
}

#[test]
fn invalid_manifest() {
    let e = SplitPlan::from_json("{not json").unwrap_err();
    assert!(matches!(e, SplitError::InvalidManifest { .. }));
    has(&e, &["invalid split manifest", "not valid JSON"]);
}

#[test]
fn fingerprint_mismatch() {
    let labels = cyclic_labels(50, 2);
    let p = plan_split(&labels, 2, &ForgetSpec::RandomCount(3), 1, 0.1).unwrap();
    let json = p.to_json().replace(p.fingerprint(), &"0".repeat(64));
    let e = SplitPlan::from_json(&json).unwrap_err();
    assert!(matches!(e, SplitError::FingerprintMismatch { .. }));
    has(&e, &["mismatch", &"0".repeat(64), p.fingerprint()]);
}

#[test]
fn unknown_set() {
    let e = SetName::parse("validation").unwrap_err();
    assert!(matches!(e, SplitError::UnknownSet { .. }));
    has(&e, &["'validation'", "val, train, forget, retain"]);
}
