"""Split planning through dau._native and dau.data.splits.

Includes a slow pure-Python implementation of the documented algorithm (RNG, planning,
fingerprint) that the native module must match exactly.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dau import _native
from dau.data import splits
from dau.data.splits import (
    SplitPlan,
    load_plan,
    parse_forget_option,
    plan_split,
    save_plan,
)
from dau.errors import ConfigError, DauError, SplitError, SplitMismatchError

# ---------------------------------------------------------------------------------------------
# Pure-Python reference of the documented algorithm (see _native.pyi and dau-core's docs).

MASK = (1 << 64) - 1


def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & MASK


class RefRng:
    def __init__(self, seed: int, domain: int, index: int) -> None:
        state = mix64(mix64(mix64(seed) ^ domain) ^ index)
        self.s = []
        for _ in range(4):
            state = (state + 0x9E3779B97F4A7C15) & MASK
            self.s.append(mix64(state))

    def next(self) -> int:
        s = self.s
        result = (rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, bound: int) -> int:
        m = self.next() * bound
        if (m & MASK) < bound:
            threshold = ((1 << 64) - bound) % bound
            while (m & MASK) < threshold:
                m = self.next() * bound
        return m >> 64

    def partial_shuffle(self, items: list[int], k: int) -> None:
        for i in range(k):
            j = i + self.below(len(items) - i)
            items[i], items[j] = items[j], items[i]


def ref_permutation(n: int, seed: int, stream: int) -> list[int]:
    rng = RefRng(seed, 3, stream)
    a = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.below(i + 1)
        a[i], a[j] = a[j], a[i]
    return a


def ref_with_replacement(n: int, k: int, seed: int, stream: int) -> list[int]:
    rng = RefRng(seed, 4, stream)
    return [rng.below(n) for _ in range(k)]


def ref_fingerprint(sets: dict[str, list[int]]) -> str:
    h = hashlib.sha256(b"dau-split-v1\n")
    for name in ("val", "train", "forget", "retain"):
        arr = sets[name]
        h.update(name.encode("ascii") + b"\0" + struct.pack("<Q", len(arr)))
        h.update(struct.pack(f"<{len(arr)}Q", *arr))
    return h.hexdigest()


def ref_plan(labels: list[int], num_classes: int, spec: str, seed: int, vf: float) -> dict:
    rng = RefRng(seed, 1, 0)
    val: set[int] = set()
    for c in range(num_classes):
        members = [i for i, label in enumerate(labels) if label == c]
        k = math.floor(vf * len(members))
        rng.partial_shuffle(members, k)
        val.update(members[:k])
    train = [i for i in range(len(labels)) if i not in val]
    kind, _, value = spec.partition(":")
    if kind == "random":
        k = math.floor(float(value[:-1]) * len(train) / 100) if value.endswith("%") else int(value)
        candidates = list(train)
        RefRng(seed, 2, 0).partial_shuffle(candidates, k)
        forget = sorted(candidates[:k])
    elif kind in ("class", "classes"):
        chosen = {int(x) for x in value.split(",")}
        forget = [p for p in train if labels[p] in chosen]
    else:
        forget = []
    forget_set = set(forget)
    sets = {
        "val": sorted(val),
        "train": train,
        "forget": forget,
        "retain": [p for p in train if p not in forget_set],
    }
    return {**sets, "fingerprint": ref_fingerprint(sets)}


# ---------------------------------------------------------------------------------------------


def cyclic(n: int, c: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64) % c


def golden_labels() -> np.ndarray:
    return np.array([1 if (i % 3 == 2 and i > 22) else i % 3 for i in range(30)], np.int64)


def check_invariants(plan: SplitPlan, labels: np.ndarray) -> None:
    n = len(labels)
    sets = {name: getattr(plan, name) for name in ("val", "train", "forget", "retain")}
    for name, arr in sets.items():
        assert arr.dtype == np.int64 and arr.ndim == 1, name
        assert np.all(np.diff(arr) > 0), name
        assert arr.size == 0 or (arr[0] >= 0 and arr[-1] < n), name
        np.testing.assert_array_equal(
            plan.class_counts(name), np.bincount(labels[arr], minlength=plan.num_classes)
        )
    assert np.intersect1d(sets["val"], sets["train"]).size == 0
    assert np.intersect1d(sets["forget"], sets["retain"]).size == 0
    np.testing.assert_array_equal(np.union1d(sets["val"], sets["train"]), np.arange(n))
    np.testing.assert_array_equal(np.union1d(sets["forget"], sets["retain"]), sets["train"])
    assert plan.counts() == {name: arr.size for name, arr in sets.items()}
    sizes = np.bincount(labels, minlength=plan.num_classes)
    expected_val = np.floor(plan.val_fraction * sizes).astype(np.int64)
    np.testing.assert_array_equal(plan.class_counts("val"), expected_val)
    assert plan.num_samples == n


def test_cifar10_like_sizes() -> None:
    labels = cyclic(50_000, 10)
    plan = plan_split(labels, 10, "class:3", seed=1)
    check_invariants(plan, labels)
    assert plan.counts() == {"val": 5000, "train": 45_000, "forget": 4500, "retain": 40_500}
    assert plan.forgotten_classes == [3]
    assert plan.class_counts("val")[3] == 500
    test_labels = cyclic(10_000, 10)
    kept = plan.test_indices(test_labels)
    assert kept.size == 9000 and not np.any(test_labels[kept] == 3)
    assert plan.test_indices(test_labels, drop_forgotten_classes=False).size == 10_000

    random = plan_split(labels, 10, "random:10%", seed=2)
    check_invariants(random, labels)
    assert random.counts()["forget"] == 4500
    assert random.forgotten_classes == []
    assert random.test_indices(test_labels).size == 10_000


def test_matches_the_python_reference_and_the_rust_golden_values() -> None:
    labels = golden_labels()
    plan = _native.plan_split(labels, 3, "random:5", 7, 0.25)
    assert plan.val.tolist() == [2, 7, 16, 19, 21, 24]
    assert plan.forget.tolist() == [8, 9, 13, 27, 28]
    assert plan.fingerprint == "d76d7ac5e917158885aa009c844cebd5297de5a034ce294dcd0ff49ec8597299"
    ref = ref_plan(labels.tolist(), 3, "random:5", 7, 0.25)
    for name in ("val", "train", "forget", "retain", "fingerprint"):
        got = getattr(plan, name)
        assert (got if isinstance(got, str) else got.tolist()) == ref[name], name
    assert _native.permutation(10, 42, 0).tolist() == [8, 1, 2, 5, 9, 6, 3, 0, 4, 7]
    assert _native.with_replacement(10, 10, 42, 0).tolist() == [0, 5, 0, 7, 5, 4, 5, 6, 3, 5]


@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=1, max_size=60),
    spec=st.sampled_from(["none", "random:3", "random:25%", "class:1", "classes:0,4"]),
    seed=st.integers(0, 2**64 - 1),
    vf=st.sampled_from([0.0, 0.1, 0.25, 0.5]),
)
def test_native_equals_reference_implementation(labels: list[int], spec: str, seed: int, vf: float) -> None:
    arr = np.array(labels, dtype=np.int64)
    try:
        plan = _native.plan_split(arr, 5, spec, seed, vf)
    except SplitError:
        return  # empty forget/retain or too many: covered elsewhere
    ref = ref_plan(labels, 5, spec, seed, vf)
    for name in ("val", "train", "forget", "retain"):
        assert getattr(plan, name).tolist() == ref[name], name
    assert plan.fingerprint == ref["fingerprint"]


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(0, 50),
    k=st.integers(0, 50),
    seed=st.integers(0, 2**64 - 1),
    stream=st.integers(0, 2**64 - 1),
)
def test_samplers_equal_reference(n: int, k: int, seed: int, stream: int) -> None:
    perm = _native.permutation(n, seed, stream)
    assert perm.dtype == np.int64
    assert perm.tolist() == ref_permutation(n, seed, stream)
    if n > 0:
        assert _native.with_replacement(n, k, seed, stream).tolist() == ref_with_replacement(
            n, k, seed, stream
        )


def test_determinism_and_seed_sensitivity() -> None:
    labels = cyclic(5000, 10)
    a = plan_split(labels, 10, "random:500", seed=5)
    b = plan_split(labels, 10, "random:500", seed=5)
    c = plan_split(labels, 10, "random:500", seed=6)
    assert a == b and hash(a) == hash(b) and a.fingerprint == b.fingerprint
    assert a != c and a.fingerprint != c.fingerprint
    assert not np.array_equal(a.val, c.val)
    assert a != "not a plan"


def test_every_spec_kind(tmp_path: Path) -> None:
    labels = (np.arange(997) * 7 + np.arange(997) // 13) % 5
    for spec in ["none", "random:1", "random:33.3%", "class:0", "classes:4,1,4"]:
        plan = plan_split(labels, 5, spec, seed=11)
        check_invariants(plan, labels)
    assert plan_split(labels, 5, "classes:4,1,4", seed=11).spec == "classes:1,4"
    none = plan_split(labels, 5, "none", seed=11)
    assert none.forget.size == 0
    np.testing.assert_array_equal(none.retain, none.train)

    chosen = none.train[::7]
    listing = tmp_path / "forget.txt"
    listing.write_text("# chosen\n" + ",\n".join(map(str, chosen[::-1])) + "  # end\n")
    plan = plan_split(labels, 5, f"indices:{listing}", seed=11)
    np.testing.assert_array_equal(plan.forget, chosen)
    np.testing.assert_array_equal(plan.val, none.val)


def test_torch_and_other_integer_inputs() -> None:
    torch = pytest.importorskip("torch")
    labels = cyclic(300, 3)
    ref = plan_split(labels, 3, "class:1", seed=4)
    assert plan_split(torch.from_numpy(labels), 3, "class:1", seed=4) == ref
    assert plan_split(labels.astype(np.int32), 3, "class:1", seed=4) == ref
    assert plan_split(labels.tolist(), 3, "class:1", seed=4) == ref
    # Non-contiguous views work natively (copied) and give the same plan.
    doubled = np.repeat(labels, 2)[::2]
    assert not doubled.flags.c_contiguous
    assert _native.plan_split(doubled, 3, "class:1", 4) == ref
    with pytest.raises(SplitError, match="integers"):
        plan_split(torch.zeros(3), 3, "none", seed=0)


def test_manifest_round_trip_and_files(tmp_path: Path) -> None:
    labels = cyclic(2000, 10)
    plan = plan_split(labels, 10, "classes:1,2", seed=2**64 - 1, val_fraction=0.15)
    back = SplitPlan.from_json(plan.to_json())
    assert back == plan and back.seed == 2**64 - 1 and back.val_fraction == 0.15
    manifest = json.loads(plan.to_json())
    assert manifest["schema_version"] == _native.MANIFEST_SCHEMA_VERSION
    assert manifest["counts"] == plan.counts()
    assert manifest["forgotten_classes"] == [1, 2]

    path = save_plan(plan, tmp_path / "split.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split.json"]
    assert load_plan(path) == plan
    assert pickle.loads(pickle.dumps(plan)) == plan
    assert copy.deepcopy(plan) == plan
    assert "classes:1,2" in repr(plan) and plan.fingerprint[:16] in repr(plan)


def test_load_plan_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(SplitError, match=r"missing\.json"):
        load_plan(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SplitError, match=r"bad\.json.*not valid JSON"):
        load_plan(bad)
    plan = plan_split(cyclic(100, 2), 2, "random:5", seed=1)
    edited = json.loads(plan.to_json())
    edited["forget"][0] += 1
    bad.write_text(json.dumps(edited))
    with pytest.raises(SplitMismatchError, match=r"fingerprint mismatch"):
        load_plan(bad)
    with pytest.raises(SplitMismatchError):
        SplitPlan.from_json(json.dumps(edited))


def test_parse_forget_option() -> None:
    assert parse_forget_option(None, 3) == "class:3"
    assert parse_forget_option("random:10%", None) == "random:10%"
    assert parse_forget_option(None, None) == "none"
    with pytest.raises(ConfigError, match="both"):
        parse_forget_option("random:5", 3)
    with pytest.raises(ConfigError):
        parse_forget_option("  ", None)


@pytest.mark.parametrize(
    ("labels", "num_classes", "spec", "seed", "vf", "message"),
    [
        ([], 10, "none", 0, 0.1, "empty"),
        ([0, 1], 0, "none", 0, 0.1, "num_classes must be at least 1"),
        ([0, 1], 10**7, "none", 0, 0.1, "too large"),
        ([0, 1, 12], 10, "none", 0, 0.1, "label 12 at position 2"),
        ([0, -1], 10, "none", 0, 0.1, "label -1 at position 1"),
        ([0, 1], 2, "none", 0, 1.0, r"val_fraction must be a number in \[0, 1\)"),
        ([0, 1], 2, "clas:3", 0, 0.1, "unknown kind 'clas'; expected one of random:N"),
        ([0, 1], 2, "random:x", 0, 0.1, "expected a sample count"),
        ([0, 1], 2, "random:0%", 0, 0.1, r"\(0, 100\]"),
        ([0, 1], 2, "class:5", 0, 0.1, r"valid classes are 0..=1"),
        ([0, 1] * 5, 2, "random:11", 0, 0.1, "asks for 11 samples .* has only 10"),
        ([0, 1] * 5, 2, "random:10", 0, 0.1, "empty retain set"),
        ([0, 1] * 5, 2, "random:0", 0, 0.1, "must not be empty"),
        ([0, 1], 2, "indices:/nonexistent/dau.txt", 0, 0.1, "/nonexistent/dau.txt"),
        ([0, 1], 2, "none", -1, 0.1, r"seed must be an integer in \[0, 2\*\*64\)"),
        ([0, 1], 2, "none", 2**64, 0.1, "seed must be"),
        ([0, 1], -3, "none", 0, 0.1, "num_classes must be"),
    ],
)
def test_errors_are_split_errors_with_clear_messages(
    labels: list[int], num_classes: int, spec: str, seed: int, vf: float, message: str
) -> None:
    with pytest.raises(SplitError, match=message):
        plan_split(np.array(labels, dtype=np.int64), num_classes, spec, seed, vf)


def test_indices_file_errors(tmp_path: Path) -> None:
    labels = cyclic(100, 2)
    base = plan_split(labels, 2, "none", seed=1)
    cases = {
        "1 2\nx3\n": "line 2: 'x3' is not an integer",
        "1\n100\n": r"line 2: position 100 is out of range.*\[0, 100\)",
        f"{base.train[0]}\n{base.train[1]} {base.train[0]}\n": "appears twice",
        f"{base.val[0]}\n": "lies in the validation split",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"ids{i}.txt"
        path.write_text(text)
        with pytest.raises(SplitError, match=message):
            plan_split(labels, 2, f"indices:{path}", seed=1)


def test_native_input_checks() -> None:
    with pytest.raises(TypeError, match="dtype int64, got float64"):
        _native.plan_split(np.zeros(3), 2, "none", 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1-D"):
        _native.plan_split(np.zeros((2, 2), np.int64), 2, "none", 0)
    with pytest.raises(TypeError, match=r"numpy\.ndarray"):
        _native.plan_split([0, 1], 2, "none", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed must be an int"):
        _native.plan_split(cyclic(4, 2), 2, "none", 1.5)  # type: ignore[arg-type]
    plan = _native.plan_split(cyclic(40, 2), 2, "class:1", np.uint8(3))  # type: ignore[arg-type]
    assert plan.seed == 3
    with pytest.raises(SplitError, match="test labels: label 2 at position 1"):
        plan.test_indices(np.array([0, 2], np.int64))
    with pytest.raises(TypeError):
        plan.test_indices(np.array([0.0]))
    with pytest.raises(SplitError, match="unknown split set 'validation'"):
        plan.class_counts("validation")
    with pytest.raises(AttributeError):
        plan.seed = 4  # type: ignore[misc]


def test_sampler_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="empty population"):
        _native.with_replacement(0, 3, 1, 0)
    with pytest.raises(ConfigError, match="too large"):
        _native.permutation(2**40, 1, 0)
    with pytest.raises(ConfigError, match=r"stream must be an integer in \[0, 2\*\*64\)"):
        _native.permutation(3, 1, -1)
    assert _native.with_replacement(0, 0, 1, 0).size == 0
    assert sorted(_native.permutation(100, 1, 7).tolist()) == list(range(100))


# --- Hypothesis: malformed inputs always give a dau error, never a crash ---------------------

SPEC_KINDS = ["random", "class", "classes", "indices", "none", "clas", "", "RANDOM"]
spec_text = st.one_of(
    st.text(max_size=20),
    st.builds(
        lambda k, sep, v: f"{k}{sep}{v}",
        st.sampled_from(SPEC_KINDS),
        st.sampled_from([":", "", "::", " : "]),
        st.one_of(
            st.text(alphabet="0123456789-+.,% eE#x", max_size=12),
            st.integers(-(10**20), 10**20).map(str),
            st.floats(allow_nan=True, allow_infinity=True).map(lambda f: f"{f}%"),
        ),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=spec_text, seed=st.integers(0, 2**64 - 1))
def test_malformed_specs_give_split_errors(spec: str, seed: int) -> None:
    labels = cyclic(200, 4)
    try:
        plan = plan_split(labels, 4, spec, seed)
    except SplitError as exc:
        assert "forget spec" in str(exc)
        return
    check_invariants(plan, labels)


@settings(max_examples=150, deadline=None)
@given(
    labels=st.one_of(
        st.lists(st.integers(-(2**63), 2**63 - 1), max_size=30).map(lambda v: np.array(v, dtype=np.int64)),
        st.lists(st.integers(-5, 300), max_size=30).map(lambda v: np.array(v, dtype=np.int16)),
        st.lists(st.integers(0, 2**64 - 1), max_size=5).map(lambda v: np.array(v, dtype=np.uint64)),
        st.lists(st.floats(), max_size=5).map(np.array),
        st.lists(st.booleans(), min_size=1, max_size=5).map(np.array),
        st.just(np.zeros((2, 3), np.int64)),
        st.just(np.array(5)),
        st.just(np.array(["a", "b"])),
        st.just([[0, 1], [2]]),
        st.just(None),
    ),
    num_classes=st.one_of(st.integers(-3, 12), st.integers(-(2**70), 2**70)),
    spec=st.sampled_from(["none", "random:3", "random:50%", "class:2", "classes:0,1"]),
    vf=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.1, 0.0])),
    seed=st.integers(-(2**65), 2**65),
)
def test_malformed_labels_and_arguments_give_dau_errors(
    labels: object, num_classes: int, spec: str, vf: float, seed: int
) -> None:
    try:
        plan = plan_split(labels, num_classes, spec, seed, vf)
    except SplitError as exc:
        assert str(exc)
        return
    arr = np.asarray(labels, dtype=np.int64)
    check_invariants(plan, arr)


# Either a small valid value or one outside [0, 2**64) (never a huge valid size: that would
# really allocate it).
sampler_int = st.one_of(st.integers(0, 40), st.integers(-(2**70), -1), st.integers(2**64, 2**70))


@settings(max_examples=100, deadline=None)
@given(n=sampler_int, k=sampler_int, seed=sampler_int, stream=sampler_int)
def test_sampler_arguments_give_config_errors(n: int, k: int, seed: int, stream: int) -> None:
    valid = all(0 <= v < 2**64 for v in (n, k, seed, stream))
    try:
        perm = _native.permutation(n, seed, stream)
    except ConfigError as exc:
        assert not valid and "must be an integer in [0, 2**64)" in str(exc)
    else:
        assert perm.size == n
    try:
        draws = _native.with_replacement(n, k, seed, stream)
    except ConfigError:
        assert not valid or (n == 0 and k > 0)
    else:
        assert valid and draws.size == k and bool(np.all((draws >= 0) & (draws < max(n, 1))))


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=80))
def test_malformed_manifests_give_split_errors(text: str) -> None:
    with pytest.raises(SplitError):
        SplitPlan.from_json(text)


def test_errors_are_dau_errors() -> None:
    assert issubclass(SplitMismatchError, SplitError)
    with pytest.raises(DauError):
        plan_split(cyclic(10, 2), 2, "nope", 0)
    assert splits.DEFAULT_VAL_FRACTION == 0.1
