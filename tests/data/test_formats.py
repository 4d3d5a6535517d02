"""The writers produce the real on-disk formats, readable by the official readers."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct

import numpy as np
import pytest
import scipy.io
import torch

from dau.data import formats
from dau.data.builtin import synthetic_arrays


def _md5s(directory):
    return {
        p.name: hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*")) if p.is_file()
    }


def test_cifar10_files_have_the_release_structure(tmp_path):
    directory = formats.write_cifar10(tmp_path, n_train=23, n_test=7, seed=1)
    assert directory == tmp_path / "cifar-10-batches-py"
    names = sorted(p.name for p in directory.iterdir())
    assert names == sorted([*(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
                            "batches.meta"])
    x_tr, y_tr, x_te, y_te = synthetic_arrays(
        num_classes=10, channels=3, size=32, n_train=23, n_test=7, seed=1
    )
    rows, labels = [], []
    for i in range(1, 6):
        with open(directory / f"data_batch_{i}", "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
        assert set(entry) == {"batch_label", "labels", "data", "filenames"}
        assert entry["data"].dtype == np.uint8 and entry["data"].shape[1] == 3072
        assert len(entry["filenames"]) == len(entry["labels"]) == entry["data"].shape[0]
        rows.append(entry["data"])
        labels += entry["labels"]
    # Row layout: red plane, green plane, blue plane, each row-major.
    np.testing.assert_array_equal(np.vstack(rows).reshape(-1, 3, 32, 32), x_tr)
    assert labels == y_tr.tolist()
    with open(directory / "test_batch", "rb") as fh:
        test = pickle.load(fh, encoding="latin1")
    np.testing.assert_array_equal(test["data"].reshape(-1, 3, 32, 32), x_te)
    assert test["labels"] == y_te.tolist()
    with open(directory / "batches.meta", "rb") as fh:
        meta = pickle.load(fh, encoding="latin1")
    assert meta["label_names"] == list(formats.CIFAR10_CLASSES)


def test_cifar10_flat_layout_writes_into_root(tmp_path):
    directory = formats.write_cifar10(tmp_path, n_train=5, n_test=2, layout="flat")
    assert directory == tmp_path
    assert (tmp_path / "data_batch_5").is_file() and (tmp_path / "batches.meta").is_file()
    with pytest.raises(ValueError, match="layout"):
        formats.write_cifar10(tmp_path, layout="nested")  # type: ignore[arg-type]


def test_cifar100_fine_and_coarse_labels_agree(tmp_path):
    directory = formats.write_cifar100(tmp_path, n_train=300, n_test=40, seed=2)
    assert directory == tmp_path / "cifar-100-python"
    with open(directory / "meta", "rb") as fh:
        meta = pickle.load(fh, encoding="latin1")
    fine, coarse = meta["fine_label_names"], meta["coarse_label_names"]
    assert len(fine) == 100 and len(set(fine)) == 100 and fine == sorted(fine)
    assert len(coarse) == 20
    with open(directory / "train", "rb") as fh:
        train = pickle.load(fh, encoding="latin1")
    assert train["data"].shape == (300, 3072)
    pairs = {
        (fine[f], coarse[c])
        for f, c in zip(train["fine_labels"], train["coarse_labels"], strict=True)
    }
    mapping = dict(pairs)
    assert len(mapping) == len(pairs)  # each fine class has a single superclass
    for f, c in [("beaver", "aquatic_mammals"), ("tractor", "vehicles_2"),
                 ("maple_tree", "trees"), ("worm", "non-insect_invertebrates")]:
        if f in mapping:
            assert mapping[f] == c


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_files_read_by_torchvision_class(tmp_path, name):
    import torchvision.datasets as tvd

    formats.write_mnist(tmp_path, n_train=12, n_test=5, seed=3, gz=False, name=name)
    cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
    train = cls(str(tmp_path), train=True, download=False)
    test = cls(str(tmp_path), train=False, download=False)
    x_tr, y_tr, x_te, y_te = synthetic_arrays(
        num_classes=10, channels=1, size=28, n_train=12, n_test=5, seed=3
    )
    assert torch.equal(train.data, torch.from_numpy(x_tr[:, 0]))
    assert torch.equal(train.targets, torch.from_numpy(y_tr))
    assert torch.equal(test.data, torch.from_numpy(x_te[:, 0]))
    assert torch.equal(test.targets, torch.from_numpy(y_te))


def test_idx_header_and_gzip(tmp_path):
    plain = formats.write_mnist(tmp_path / "a", n_train=4, n_test=2, layout="flat", gz=False)
    packed = formats.write_mnist(tmp_path / "b", n_train=4, n_test=2, layout="flat", gz=True)
    raw = (plain / "train-images-idx3-ubyte").read_bytes()
    assert struct.unpack(">IIII", raw[:16]) == (0x0803, 4, 28, 28)
    assert len(raw) == 16 + 4 * 28 * 28
    labels = (plain / "t10k-labels-idx1-ubyte").read_bytes()
    assert struct.unpack(">II", labels[:8]) == (0x0801, 2)
    with gzip.open(packed / "train-images-idx3-ubyte.gz") as fh:
        assert fh.read() == raw
    assert sorted(p.name for p in packed.iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    ]


def test_mnist_layouts(tmp_path):
    assert formats.write_mnist(tmp_path, 2, 1) == tmp_path / "MNIST" / "raw"
    assert (formats.write_mnist(tmp_path, 2, 1, name="fashion-mnist")
            == tmp_path / "FashionMNIST" / "raw")
    with pytest.raises(ValueError, match="name"):
        formats.write_mnist(tmp_path, 2, 1, name="kmnist")  # type: ignore[arg-type]


def test_svhn_mat_files(tmp_path):
    formats.write_svhn(tmp_path, n_train=30, n_test=10, seed=4, n_extra=6)
    mat = scipy.io.loadmat(tmp_path / "train_32x32.mat")
    assert mat["X"].shape == (32, 32, 3, 30) and mat["X"].dtype == np.uint8
    assert mat["y"].shape == (30, 1)
    assert mat["y"].min() >= 1 and mat["y"].max() <= 10  # digit 0 is stored as 10
    x_tr, y_tr, _, _ = synthetic_arrays(
        num_classes=10, channels=3, size=32, n_train=36, n_test=10, seed=4
    )
    np.testing.assert_array_equal(mat["X"].transpose(3, 2, 0, 1), x_tr[:30])
    np.testing.assert_array_equal(mat["y"][:, 0] % 10, y_tr[:30])
    assert 10 in mat["y"]
    assert scipy.io.loadmat(tmp_path / "extra_32x32.mat")["X"].shape[-1] == 6
    assert scipy.io.loadmat(tmp_path / "test_32x32.mat")["y"].shape == (10, 1)


def test_writers_are_deterministic(tmp_path):
    for sub in ("one", "two"):
        formats.write_cifar10(tmp_path / sub, 10, 4, seed=5)
        formats.write_mnist(tmp_path / sub, 10, 4, seed=5)
        formats.write_svhn(tmp_path / sub / "svhn", 10, 4, seed=5)
    assert _md5s(tmp_path / "one") == _md5s(tmp_path / "two")
    formats.write_cifar10(tmp_path / "three", 10, 4, seed=6)
    a = (tmp_path / "one" / "cifar-10-batches-py" / "data_batch_1").read_bytes()
    b = (tmp_path / "three" / "cifar-10-batches-py" / "data_batch_1").read_bytes()
    assert a != b


def test_bad_counts_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="n_train"):
        formats.write_cifar10(tmp_path, n_train=-1)
