//! Property tests over random label arrays, specs, seeds and validation fractions.

mod common;

use common::check_invariants;
use dau_core::{permutation, plan_split, with_replacement, ForgetSpec, SplitError, SplitPlan};
use proptest::prelude::*;

fn labels_and_classes() -> impl Strategy<Value = (Vec<i64>, u64)> {
    (1u64..12).prop_flat_map(|c| (prop::collection::vec(0..c as i64, 1..400), Just(c)))
}

fn spec_for(c: u64) -> impl Strategy<Value = ForgetSpec> {
    prop_oneof![
        Just(ForgetSpec::None),
        (0u64..120).prop_map(ForgetSpec::RandomCount),
        (1u32..=1000).prop_map(|p| ForgetSpec::RandomPercent(f64::from(p) / 10.0)),
        (-1i64..=c as i64).prop_map(ForgetSpec::Class),
        prop::collection::vec(0i64..c as i64, 1..4).prop_map(|mut v| {
            v.sort_unstable();
            v.dedup();
            ForgetSpec::Classes(v)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn plans_are_valid_or_fail_cleanly(
        (labels, c, spec) in labels_and_classes()
            .prop_flat_map(|(labels, c)| (Just(labels), Just(c), spec_for(c))),
        seed in any::<u64>(),
        val_fraction in prop_oneof![Just(0.0), Just(0.1), 0.0f64..0.9],
    ) {
        match plan_split(&labels, c, &spec, seed, val_fraction) {
            Ok(plan) => {
                check_invariants(&plan, &labels);
                prop_assert_eq!(plan.forget().is_empty(), spec.is_none());
                if let ForgetSpec::RandomCount(k) = spec {
                    prop_assert_eq!(plan.forget().len() as u64, k);
                }
                let again = plan_split(&labels, c, &spec, seed, val_fraction).unwrap();
                prop_assert_eq!(&again, &plan);
                let back = SplitPlan::from_json(&plan.to_json()).unwrap();
                prop_assert_eq!(&back, &plan);
                let all = plan.test_indices(&labels, false).unwrap();
                prop_assert_eq!(all.len(), labels.len());
                let kept = plan.test_indices(&labels, true).unwrap();
                let forgotten = plan.forgotten_classes();
                let none_forgotten =
                    kept.iter().all(|&i| !forgotten.contains(&(labels[i as usize] as u64)));
                prop_assert!(none_forgotten);
            }
            Err(e) => {
                let ok = matches!(
                    e,
                    SplitError::ClassOutOfRange { .. }
                        | SplitError::ForgetCountTooLarge { .. }
                        | SplitError::EmptyForget { .. }
                        | SplitError::EmptyRetain { .. }
                );
                prop_assert!(ok, "unexpected error {}", e);
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn bad_labels_are_reported_at_their_position(
        mut labels in prop::collection::vec(0i64..5, 1..100),
        at in any::<prop::sample::Index>(),
        bad in prop_oneof![i64::MIN..0, 5i64..i64::MAX],
    ) {
        let at = at.index(labels.len());
        labels[at] = bad;
        let err = plan_split(&labels, 5, &ForgetSpec::None, 0, 0.1).unwrap_err();
        let is_expected = matches!(
            err,
            SplitError::LabelOutOfRange { position, value, .. } if position == at && value == bad
        );
        prop_assert!(is_expected, "{}", err);
    }

    #[test]
    fn spec_parsing_never_panics_and_round_trips(text in ".{0,24}") {
        if let Ok(spec) = ForgetSpec::parse(&text) {
            let canonical = spec.to_string();
            prop_assert_eq!(ForgetSpec::parse(&canonical).unwrap(), spec);
        }
    }

    #[test]
    fn structured_specs_round_trip(
        kind in 0usize..5, a in any::<u32>(), b in 1u32..=1000, ks in prop::collection::vec(-5i64..50, 1..5)
    ) {
        let text = match kind {
            0 => "none".to_owned(),
            1 => format!("random:{a}"),
            2 => format!("random:{}%", f64::from(b) / 10.0),
            3 => format!("class:{}", ks[0]),
            _ => format!("classes:{}", ks.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")),
        };
        let spec = ForgetSpec::parse(&text).unwrap();
        prop_assert_eq!(ForgetSpec::parse(&spec.to_string()).unwrap(), spec);
    }

    #[test]
    fn manifest_parsing_never_panics(text in ".{0,64}") {
        let _ = SplitPlan::from_json(&text);
    }

    #[test]
    fn samplers_are_valid(n in 0u64..300, k in 0u64..300, seed in any::<u64>(), stream in any::<u64>()) {
        let p = permutation(n, seed, stream).unwrap();
        let mut sorted = p.clone();
        sorted.sort_unstable();
        prop_assert_eq!(sorted, (0..n).collect::<Vec<_>>());
        match with_replacement(n, k, seed, stream) {
            Ok(d) => {
                prop_assert_eq!(d.len() as u64, k);
                prop_assert!(d.iter().all(|&x| x < n));
            }
            Err(_) => prop_assert!(n == 0 && k > 0),
        }
    }
}
