//! Sample fingerprints, dataset digests, fingerprint files and request resolution.

mod common;

use std::path::Path;

use common::check_invariants;
use dau_core::fingerprint::{parse_hex, to_hex};
use dau_core::{
    digest, fingerprint_sample, fingerprint_samples, parse_fingerprints, plan_split,
    plan_split_request, resolve, Fingerprint, FingerprintError, ForgetSpec, SplitError, SplitPlan,
};
use proptest::prelude::*;

#[test]
fn fingerprint_is_blake3_truncated_to_128_bits() {
    // BLAKE3("abc") = 6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85
    assert_eq!(
        to_hex(&fingerprint_sample(b"abc")),
        "6437b3ac38465133ffb63b75273a8db5"
    );
    // BLAKE3("") = af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262
    assert_eq!(
        to_hex(&fingerprint_sample(b"")),
        "af1349b9f5f9a1a6a0404dea36dcc949"
    );
}

#[test]
fn hex_round_trip_and_rejects() {
    let fp = fingerprint_sample(b"sample");
    assert_eq!(parse_hex(&to_hex(&fp)), Some(fp));
    assert_eq!(parse_hex(&to_hex(&fp).to_uppercase()), Some(fp));
    for bad in ["", "abc", &"g".repeat(32), &"0".repeat(31), &"0".repeat(33), "ééééééééééééééää"] {
        assert_eq!(parse_hex(bad), None, "{bad}");
    }
}

#[test]
fn samples_errors() {
    assert!(matches!(
        fingerprint_samples(&[1, 2, 3], 0, None),
        Err(FingerprintError::EmptySample)
    ));
    let err = fingerprint_samples(&[1, 2, 3], 2, None).unwrap_err();
    assert_eq!(err.to_string(), "3 bytes are not a whole number of samples of 2 bytes");
    assert!(matches!(
        fingerprint_samples(&[1, 2], 1, Some(0)),
        Err(FingerprintError::BadThreads { threads: 0 })
    ));
    assert_eq!(fingerprint_samples(&[], 5, None).unwrap(), Vec::<Fingerprint>::new());
}

#[test]
fn file_parsing_reports_lines() {
    let a = to_hex(&fingerprint_sample(b"a"));
    let b = to_hex(&fingerprint_sample(b"b"));
    let text = format!("# header\n{a}\n\n{b}, {a}  # dup\n");
    let listed = parse_fingerprints(&text, Path::new("req.txt")).unwrap();
    let lines: Vec<usize> = listed.iter().map(|l| l.line).collect();
    assert_eq!(lines, [2, 4, 4]);
    assert_eq!(listed[2].fingerprint, fingerprint_sample(b"a"));

    let err = parse_fingerprints(&format!("{a}\nnot-a-hash\n"), Path::new("req.txt")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "fingerprint file 'req.txt', line 2: 'not-a-hash' is not a fingerprint; expected 32 \
         hexadecimal digits (as written by `dau fingerprint`)"
    );
    let err = parse_fingerprints("# nothing\n\n", Path::new("e.txt")).unwrap_err();
    assert!(matches!(err, FingerprintError::Empty { .. }), "{err}");
    let err = dau_core::read_fingerprints(Path::new("/nonexistent/req.txt")).unwrap_err();
    assert!(err.to_string().starts_with("fingerprint file '/nonexistent/req.txt' cannot be read"));
}

#[test]
fn digest_depends_on_content_and_order() {
    let fps: Vec<Fingerprint> = (0u8..50).map(|i| fingerprint_sample(&[i])).collect();
    let d = digest(&fps);
    assert_eq!(d.len(), 64);
    let mut swapped = fps.clone();
    swapped.swap(3, 4);
    assert_ne!(digest(&swapped), d);
    assert_ne!(digest(&fps[..49]), d);
    assert_ne!(digest(&[]), digest(&[[0u8; 16]]));
    // More than one internal buffer (1024 fingerprints) gives the same as the plain definition.
    let many: Vec<Fingerprint> = (0u32..3000).map(|i| fingerprint_sample(&i.to_le_bytes())).collect();
    let mut h = blake3::Hasher::new();
    h.update(b"dau-fingerprints-v1\n");
    h.update(&3000u64.to_le_bytes());
    for fp in &many {
        h.update(fp);
    }
    assert_eq!(digest(&many), h.finalize().to_hex().to_string());
}

#[test]
fn resolve_reports_duplicates_and_misses() {
    let data: Vec<Fingerprint> = [b"x", b"y", b"x", b"z"].iter().map(|s| fingerprint_sample(*s)).collect();
    let req = [fingerprint_sample(b"x"), fingerprint_sample(b"absent"), fingerprint_sample(b"z"), fingerprint_sample(b"x")];
    let pairs = resolve(&data, &req, Some(2)).unwrap();
    assert_eq!(pairs, [(0, 0), (0, 2), (2, 3), (3, 0), (3, 2)]);
    assert!(resolve(&data, &[], None).unwrap().is_empty());
    assert!(resolve(&[], &req, None).unwrap().is_empty());
}

fn labels_for_request() -> Vec<i64> {
    (0..40).map(|i| i % 4).collect()
}

#[test]
fn request_plans_forget_train_matches_and_return_validation_ones() {
    let labels = labels_for_request();
    let spec = ForgetSpec::parse("fingerprints:req.txt").unwrap();
    let none = plan_split(&labels, 4, &ForgetSpec::None, 3, 0.25).unwrap();
    let val = none.val();
    let train = none.train();
    let positions = [train[0], val[0], train[5], train[0], val[1]];
    let (plan, in_val) = plan_split_request(&labels, 4, &spec, 3, 0.25, &positions).unwrap();
    check_invariants(&plan, &labels);
    assert_eq!(plan.val(), val);
    assert_eq!(plan.train(), train);
    let mut expected = vec![train[0], train[5]];
    expected.sort_unstable();
    assert_eq!(plan.forget(), expected);
    let mut expected_val = vec![val[0], val[1]];
    expected_val.sort_unstable();
    assert_eq!(in_val, expected_val);
    assert_eq!(plan.spec(), "fingerprints:req.txt");
    // The manifest keeps the request spec and reads back.
    assert_eq!(SplitPlan::from_json(&plan.to_json()).unwrap(), plan);
}

#[test]
fn request_errors() {
    let labels = labels_for_request();
    let spec = ForgetSpec::parse("ids:users.txt").unwrap();
    let err = plan_split(&labels, 4, &spec, 3, 0.25).unwrap_err();
    assert!(matches!(err, SplitError::UnresolvedRequest { .. }), "{err}");
    let err = plan_split_request(&labels, 4, &spec, 3, 0.25, &[40]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "forget spec 'ids:users.txt': matched position 40 is out of range; positions must lie \
         in [0, 40)"
    );
    let err = plan_split_request(&labels, 4, &ForgetSpec::RandomCount(3), 3, 0.25, &[1]).unwrap_err();
    assert!(matches!(err, SplitError::InvalidRequest { .. }), "{err}");
    let none = plan_split(&labels, 4, &ForgetSpec::None, 3, 0.25).unwrap();
    let err = plan_split_request(&labels, 4, &spec, 3, 0.25, &none.val()).unwrap_err();
    assert!(matches!(err, SplitError::EmptyForget { .. }), "{err}");
    for bad in ["fingerprints:", "files: ", "ids"] {
        let err = ForgetSpec::parse(bad).unwrap_err();
        assert!(err.to_string().contains("expected a file path"), "{err}");
    }
    assert_eq!(ForgetSpec::parse(" files: a b/ ").unwrap().to_string(), "files:a b/");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Fingerprints are per-sample hashes, whatever the thread count and block boundaries.
    #[test]
    fn samples_match_sequential_for_any_thread_count(
        sample_len in 1usize..40,
        n in 0usize..700,
        threads in 1usize..5,
        seed in any::<u8>(),
    ) {
        let data: Vec<u8> = (0..n * sample_len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        let parallel = fingerprint_samples(&data, sample_len, Some(threads)).unwrap();
        let sequential: Vec<Fingerprint> = data.chunks_exact(sample_len).map(fingerprint_sample).collect();
        prop_assert_eq!(&parallel, &sequential);
        prop_assert_eq!(fingerprint_samples(&data, sample_len, None).unwrap(), sequential);
    }

    /// Resolution equals the brute-force definition, on any thread count.
    #[test]
    fn resolve_matches_brute_force(
        dataset in prop::collection::vec(0u8..12, 0..300),
        request in prop::collection::vec(0u8..16, 0..30),
        threads in 1usize..4,
    ) {
        let fp = |b: u8| fingerprint_sample(&[b]);
        let data: Vec<Fingerprint> = dataset.iter().map(|&b| fp(b)).collect();
        let req: Vec<Fingerprint> = request.iter().map(|&b| fp(b)).collect();
        let mut expected = Vec::new();
        for (i, r) in req.iter().enumerate() {
            for (p, d) in data.iter().enumerate() {
                if r == d {
                    expected.push((i as u64, p as u64));
                }
            }
        }
        prop_assert_eq!(resolve(&data, &req, Some(threads)).unwrap(), expected);
    }

    /// Request plans are valid splits: forget = matched ∩ train, in_val = matched ∩ val.
    #[test]
    fn request_plans_are_valid(
        n in 2usize..200,
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..30),
        seed in any::<u64>(),
    ) {
        let labels: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
        let positions: Vec<u64> = picks.iter().map(|ix| ix.index(n) as u64).collect();
        let spec = ForgetSpec::parse("files:imgs").unwrap();
        match plan_split_request(&labels, 3, &spec, seed, 0.2, &positions) {
            Ok((plan, in_val)) => {
                check_invariants(&plan, &labels);
                let val = plan.val();
                for &p in &positions {
                    let is_val = val.binary_search(&p).is_ok();
                    prop_assert_eq!(in_val.binary_search(&p).is_ok(), is_val);
                    prop_assert_eq!(plan.forget().binary_search(&p).is_ok(), !is_val);
                }
                prop_assert_eq!(plan.forget().len() + in_val.len(),
                    positions.iter().collect::<std::collections::BTreeSet<_>>().len());
            }
            Err(SplitError::EmptyForget { .. } | SplitError::EmptyRetain { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }
}
