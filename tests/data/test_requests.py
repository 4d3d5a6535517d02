"""Fingerprints, deletion requests by content, split files and their verification."""

from __future__ import annotations

import csv
import gzip
import json
import pickle
import shutil
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dau import _native
from dau.cli import main
from dau.data import load_dataset
from dau.data.fingerprints import (
    digest,
    fingerprint_images,
    from_hex,
    read_fingerprint_file,
    to_hex,
    write_fingerprint_file,
)
from dau.data.formats import write_cifar10, write_mnist
from dau.data.requests import plan_forget
from dau.data.splits import check_dataset, dataset_section, load_split, request_kind, save_split, verify_split
from dau.errors import ConfigError, RequestError, SplitError, SplitMismatchError


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory) -> Path:
    return write_cifar10(tmp_path_factory.mktemp("cifar"), n_train=300, n_test=60, seed=2,
                         layout="flat")


@pytest.fixture(scope="module")
def cifar(cifar_root):
    return load_dataset("cifar10", cifar_root)


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


# --- fingerprints ------------------------------------------------------------------------


def test_fingerprint_hashes_the_stored_bytes(cifar_root, cifar, tmp_path):
    """A CIFAR sample's fingerprint is that of its 3072-byte pickled row; an MNIST sample's
    that of its idx record: the documented layout (C, H, W uint8), label not hashed."""
    with open(cifar_root / "data_batch_1", "rb") as fh:
        rows = pickle.load(fh, encoding="latin1")["data"]
    fps = fingerprint_images(cifar.train.images)
    assert fps.shape == (300, 16) and fps.dtype == np.uint8
    assert np.array_equal(_native.fingerprint_samples(np.ascontiguousarray(rows[:5])), fps[:5])
    mnist_root = write_mnist(tmp_path, n_train=20, n_test=10, seed=1, layout="flat")
    mnist = load_dataset("mnist", mnist_root)
    with gzip.open(next(Path(mnist_root).glob("train-images*")), "rb") as fh:
        idx = fh.read()[16:]
    records = np.frombuffer(idx, dtype=np.uint8).reshape(20, 784)
    assert np.array_equal(_native.fingerprint_samples(records), fingerprint_images(mnist.train.images))


def test_fingerprints_do_not_depend_on_threads_or_layout(cifar):
    images = cifar.train.images
    one = fingerprint_images(images, threads=1)
    assert np.array_equal(one, fingerprint_images(images, threads=2))
    strided = images.numpy()[::-1][::-1]  # same content, a non-contiguous view is copied
    assert np.array_equal(one, _native.fingerprint_samples(np.asarray(strided)))
    assert np.array_equal(from_hex(to_hex(one)), one)
    assert digest(one) != digest(one[::-1])
    assert len(set(to_hex(one))) == len(one)  # synthetic images are all distinct


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (np.zeros((3, 4), dtype=np.int64), TypeError, "dtype uint8"),
        ([1, 2, 3], TypeError, "numpy.ndarray of uint8"),
        (np.zeros(5, dtype=np.uint8), ValueError, "at least 2 dimensions"),
        (np.zeros((3, 0), dtype=np.uint8), RequestError, "at least one byte"),
    ],
)
def test_bad_sample_arrays(value, error, match):
    with pytest.raises(error, match=match):
        _native.fingerprint_samples(value)


def test_bad_threads_and_fingerprint_arrays():
    with pytest.raises(RequestError, match="threads must be at least 1"):
        _native.fingerprint_samples(np.zeros((2, 3), dtype=np.uint8), 0)
    with pytest.raises(TypeError, match="threads must be an int"):
        _native.fingerprint_samples(np.zeros((2, 3), dtype=np.uint8), 1.5)
    with pytest.raises(ValueError, match=r"shape \[M, 16\]"):
        _native.resolve_fingerprints(np.zeros((2, 15), dtype=np.uint8), np.zeros((1, 16), np.uint8))


def test_fingerprint_file_round_trip(tmp_path, cifar):
    fps = fingerprint_images(cifar.test.images)
    path = write_fingerprint_file(tmp_path / "t.fp", fps, {"dataset": "cifar10"})
    read, lines = read_fingerprint_file(path)
    assert np.array_equal(read, fps)
    header = sum(1 for line in path.read_text().splitlines() if line.startswith("#"))
    assert lines[0] == header + 1 and lines[-1] == header + len(fps)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=string.hexdigits + " ,#\n\tzé", max_size=200))
def test_malformed_request_files_fail_cleanly(tmp_path, text):
    path = tmp_path / "req.txt"
    path.write_text(text, encoding="utf-8")
    try:
        fps, lines = read_fingerprint_file(path)
    except RequestError as exc:
        assert "req.txt" in str(exc)
    else:
        assert len(fps) == len(lines) > 0
        assert all(line >= 1 for line in lines)


# --- requests --------------------------------------------------------------------------


def _request(tmp_path, cifar, train_positions, test_positions, made_up=()):
    train_hex, test_hex = to_hex(fingerprint_images(cifar.train.images)), to_hex(
        fingerprint_images(cifar.test.images))
    lines = ["# request"] + [train_hex[p] for p in train_positions] + [
        test_hex[p] for p in test_positions] + list(made_up)
    path = tmp_path / "request.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_request_resolves_and_reports_what_was_never_trained_on(tmp_path, cifar):
    base = _native.plan_split(np.asarray(cifar.train.labels), 10, "none", 1)
    val, train = base.val, base.train
    path = _request(tmp_path, cifar, [train[3], train[40], val[0], train[3]], [7],
                    ["0" * 32])
    plan, record = plan_forget(cifar, f"fingerprints:{path}", 1, 0.1)
    assert plan.forget.tolist() == sorted([train[3], train[40]])
    assert np.array_equal(plan.val, val) and np.array_equal(plan.train, train)
    statuses = [r["status"] for r in record["resolution"]]
    assert statuses == ["forgotten", "forgotten", "validation", "forgotten", "test", "absent"]
    assert record["summary"] == {"forgotten": 3, "validation": 1, "test": 1, "absent": 1,
                                 "unresolved": 0, "samples_forgotten": 2}
    assert record["resolution"][4]["test"] == [7]
    assert record["resolution"][0]["line"] == 2
    assert len(record["source_sha256"]) == 64


def test_request_matching_nothing_trained_on_is_an_error(tmp_path, cifar):
    path = _request(tmp_path, cifar, [], [1, 2], ["f" * 32])
    with pytest.raises(RequestError, match=r"none of its 3 items matched the training split "
                       r"\(2 test, 1 absent\)"):
        plan_forget(cifar, f"fingerprints:{path}", 1, 0.1)
    with pytest.raises(RequestError, match="does not exist"):
        plan_forget(cifar, f"fingerprints:{tmp_path / 'missing.txt'}", 1, 0.1)
    with pytest.raises(SplitError, match="must be resolved against the dataset"):
        _native.plan_split(np.asarray(cifar.train.labels), 10, f"fingerprints:{path}", 1)


def test_files_request_hashes_images_like_samples(tmp_path, cifar):
    from PIL import Image

    base = _native.plan_split(np.asarray(cifar.train.labels), 10, "none", 1)
    folder = tmp_path / "images"
    folder.mkdir()
    p = int(base.train[11])
    Image.fromarray(cifar.train.images[p].permute(1, 2, 0).numpy()).save(folder / "a.png")
    Image.new("RGB", (31, 32)).save(folder / "b.png")
    (folder / "c.png").write_bytes(b"not a png")
    plan, record = plan_forget(cifar, f"files:{folder}", 1, 0.1)
    assert plan.forget.tolist() == [p]
    assert [r["status"] for r in record["resolution"]] == ["forgotten", "unresolved", "unresolved"]
    assert "31x32 pixels" in record["resolution"][1]["reason"]
    listing = tmp_path / "list.txt"
    listing.write_text("images/a.png\n")
    assert plan_forget(cifar, f"files:{listing}", 1, 0.1)[0].forget.tolist() == [p]


def test_ids_request_through_a_metadata_table(tmp_path, cifar):
    base = _native.plan_split(np.asarray(cifar.train.labels), 10, "none", 1)
    table = tmp_path / "meta.csv"
    with open(table, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["user_id", "index"])
        for i in range(len(cifar.train)):
            writer.writerow([f"u{i % 100}", i])
    ids = tmp_path / "ids.txt"
    ids.write_text("u5\nnobody\n")
    plan, record = plan_forget(cifar, f"ids:{ids}", 1, 0.1, metadata=table, id_column="user_id")
    expected = [p for p in (5, 105, 205) if p in set(base.train.tolist())]
    assert plan.forget.tolist() == expected
    assert record["resolution"][1]["status"] == "unresolved"
    assert record["metadata_sha256"] and record["id_column"] == "user_id"
    with pytest.raises(RequestError, match="needs --metadata CSV and --id-column"):
        plan_forget(cifar, f"ids:{ids}", 1, 0.1)
    with pytest.raises(RequestError, match="is not a column"):
        plan_forget(cifar, f"ids:{ids}", 1, 0.1, metadata=table, id_column="uid")
    with pytest.raises(RequestError, match="only apply to --forget ids"):
        plan_forget(cifar, "random:5", 1, 0.1, metadata=table, id_column="user_id")


def test_request_kind():
    assert request_kind("fingerprints:a.txt") == "fingerprints"
    assert request_kind(" files: d/") == "files"
    assert request_kind("indices:a.txt") is None and request_kind("ids") is None


# --- split files and verification ---------------------------------------------------------


def test_split_file_verifies_and_names_differences(tmp_path, cifar_root, cifar):
    plan, _ = plan_forget(cifar, "random:10%", 1, 0.1)
    path = save_split(tmp_path / "split.json", plan, dataset=dataset_section("cifar10", cifar, plan))
    loaded, doc = load_split(path)
    assert loaded == plan and doc["dataset"]["num_train"] == 300
    assert len(doc["dataset"]["forget_fingerprints"]) == len(plan.forget)
    assert verify_split(loaded, doc, cifar) == ([], [])

    tampered = tmp_path / "tampered"
    shutil.copytree(cifar_root, tampered)
    batch = tampered / "data_batch_1"
    entry = pickle.loads(batch.read_bytes(), encoding="latin1")
    victim = int(plan.forget[0])  # batch 1 holds the first 60 samples
    assert victim < 60
    entry["data"][victim, 0] ^= 0xFF
    batch.write_bytes(pickle.dumps(entry))
    diffs, _ = verify_split(loaded, doc, load_dataset("cifar10", tampered))
    text = " | ".join(diffs)
    assert "training-set content differs" in text and "forget" in text
    assert f"1 of {len(plan.forget)} positions hold other content now ({victim})" in text
    with pytest.raises(SplitMismatchError, match="does not match"):
        check_dataset(path, load_dataset("cifar10", tampered), "run x")


def test_request_split_file_reproduces_from_its_own_fingerprints(tmp_path, cifar):
    base = _native.plan_split(np.asarray(cifar.train.labels), 10, "none", 1)
    req = _request(tmp_path, cifar, [base.train[0], base.train[9]], [])
    plan, record = plan_forget(cifar, f"fingerprints:{req}", 1, 0.1)
    path = save_split(tmp_path / "s.json", plan, dataset=dataset_section("c", cifar, plan),
                      request=record)
    req.unlink()  # the request file is gone: the split file alone reproduces the plan
    loaded, doc = load_split(path)
    assert verify_split(loaded, doc, cifar) == ([], [])
    assert doc["request"]["summary"]["samples_forgotten"] == 2


def test_split_cli_plan_show_verify(tmp_path, capsys, cifar_root):
    out = tmp_path / "split.json"
    code, _, err = run_cli(capsys, "split", "plan", "--dataset", "cifar10", "--data-dir",
                           str(cifar_root), "--forget", "class:3", "-o", str(out), "-q")
    assert code == 0, err
    code, stdout, _ = run_cli(capsys, "split", "show", str(out), "--json")
    data = json.loads(stdout)
    assert data["counts"]["forget"] == data["class_counts"]["train"][3] > 0
    assert data["dataset"]["name"] == "cifar10"
    code, _, err = run_cli(capsys, "split", "show", str(out))
    assert code == 0
    code, _, err = run_cli(capsys, "split", "verify", str(out), "--data-dir", str(cifar_root))
    assert code == 0 and "matches" in err
    other = write_cifar10(tmp_path / "other", n_train=300, n_test=60, seed=5, layout="flat")
    code, _, err = run_cli(capsys, "split", "verify", str(out), "--data-dir", str(other))
    assert code == 1 and "differs: training-set content differs" in err


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--forget", "fingerprints:"], "expected a file path"),
        (["--forget", "fingerprints:nope.txt"], "does not exist"),
        (["--forget", "random:5000"], "asks for 5000 samples"),
        (["--forget", "ids:x.txt", "--id-column", "u"], "needs --metadata"),
        (["--forget", "random:1", "--seed", "-1"], "--seed"),
    ],
)
def test_split_cli_bad_input_exits_1_and_writes_nothing(tmp_path, capsys, cifar_root, args, match):
    (tmp_path / "x.txt").write_text("a\n")
    out = tmp_path / "split.json"
    code, _, err = run_cli(capsys, "split", "plan", "--dataset", "cifar10", "--data-dir",
                           str(cifar_root), *[a.replace("x.txt", str(tmp_path / "x.txt")) for a in args],
                           "-o", str(out))
    assert code == 1, err
    assert match in err and err.count("\n") >= 1
    assert err.strip().splitlines()[-1].startswith("error: ")
    assert not out.exists() and not list(tmp_path.glob(".split.json*"))


def test_fingerprint_cli(tmp_path, capsys, cifar_root, cifar):
    out = tmp_path / "c.fp"
    code, stdout, err = run_cli(capsys, "fingerprint", "--dataset", "cifar10", "--data-dir",
                                str(cifar_root), "-o", str(out), "--json")
    assert code == 0, err
    data = json.loads(stdout)
    fps = fingerprint_images(cifar.train.images)
    assert data["digest"] == digest(fps) and data["samples"] == 300
    assert np.array_equal(read_fingerprint_file(out)[0], fps)


# --- samplers ------------------------------------------------------------------------------


def test_sharded_samplers():
    shards = [_native.permutation_shard(10, 3, 1, r, 3) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    assert set(np.concatenate(shards).tolist()) == set(range(10))
    assert np.array_equal(_native.permutation_shard(10, 3, 1, 0, 1), _native.permutation(10, 3, 1))
    full = _native.with_replacement(7, 8, 3, 2)
    assert np.array_equal(_native.with_replacement_shard(7, 4, 3, 2, 1, 2), full[1::2])
    streams = {_native.set_stream(s, 0) for s in ("val", "train", "forget", "retain")}
    assert len(streams) == 4
    with pytest.raises(ConfigError, match="rank must lie in"):
        _native.permutation_shard(10, 3, 1, 3, 3)
    with pytest.raises(SplitError, match="unknown split set"):
        _native.set_stream("test", 0)


@settings(max_examples=50, deadline=None)
@given(labels=st.lists(st.integers(-3, 12), max_size=30),
       spec=st.sampled_from(["random:3", "class:2", "fingerprints:x", "files:", "ids:a", "none",
                             "random:200%", "bogus:1"]),
       positions=st.lists(st.integers(-2, 40), max_size=5))
def test_malformed_labels_specs_and_positions_fail_cleanly(labels, spec, positions):
    arr = np.asarray(labels, dtype=np.int64)
    for call in (lambda: _native.plan_split(arr, 10, spec, 1),
                 lambda: _native.plan_split_request(arr, 10, spec, 1,
                                                    np.asarray(positions, dtype=np.int64))):
        try:
            result = call()
        except SplitError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            plan = result[0] if isinstance(result, tuple) else result
            assert len(plan.forget) + len(plan.retain) == len(plan.train)
