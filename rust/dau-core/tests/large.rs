//! Plans large enough for the parallel set extraction give the same sets as the sequential
//! iterator over the roles.

use dau_core::{plan_split, ForgetSpec, SetName};

#[test]
fn parallel_positions_match_the_roles() {
    let n = 700_001u64;
    let labels: Vec<i64> = (0..n).map(|i| ((i * 2_654_435_761) % 97) as i64).collect();
    for spec in ["random:10%", "class:3", "none"] {
        let plan = plan_split(&labels, 97, &ForgetSpec::parse(spec).unwrap(), 5, 0.1).unwrap();
        for set in [SetName::Val, SetName::Train, SetName::Forget, SetName::Retain] {
            let parallel = plan.positions(set);
            let sequential: Vec<u64> = plan.iter(set).collect();
            assert_eq!(parallel.len() as u64, plan.len(set), "{spec} {}", set.as_str());
            assert_eq!(parallel, sequential, "{spec} {}", set.as_str());
        }
    }
}
