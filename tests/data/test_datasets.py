"""Dataset loading: every reader on small real-format files, search order, errors."""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from dau.data import Dataset, ImageData, builtin, formats, list_datasets, load_dataset, readers
from dau.errors import ConfigError, DataError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No DAU_DATA, an empty Debian root and an empty cache unless a test sets them."""
    monkeypatch.delenv("DAU_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(readers, "DEBIAN_DATA_ROOT", tmp_path / "debian")


def _expect(dataset: Dataset, x_tr, y_tr, x_te, y_te) -> None:
    assert torch.equal(dataset.train.images, torch.from_numpy(x_tr))
    assert torch.equal(dataset.train.labels, torch.from_numpy(y_tr))
    assert torch.equal(dataset.test.images, torch.from_numpy(x_te))
    assert torch.equal(dataset.test.labels, torch.from_numpy(y_te))
    for part in (dataset.train, dataset.test):
        assert part.images.dtype == torch.uint8 and part.images.dim() == 4
        assert part.labels.dtype == torch.int64
        assert part.images.is_contiguous()


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_list_datasets():
    assert list_datasets() == [
        "cifar10", "cifar100", "digits", "fashion-mnist", "filelist", "imagefolder", "mnist",
        "svhn", "synthetic"
    ]


@pytest.mark.parametrize("layout", ["torchvision", "flat"])
def test_cifar10(tmp_path, layout):
    root = tmp_path / "data"
    formats.write_cifar10(root, n_train=27, n_test=9, seed=1, layout=layout)
    ds = load_dataset("cifar10", root, download=False)
    _expect(ds, *synthetic_arrays(10, 3, 32, 27, 9, 1))
    info = ds.info
    assert (info.num_classes, info.channels, info.height, info.width) == (10, 3, 32, 32)
    assert info.mean == (0.4914, 0.4822, 0.4465) and info.std == (0.2470, 0.2435, 0.2616)
    assert info.class_names[0] == "airplane" and len(info.class_names) == 10
    assert info.hflip and info.crop_padding == 4
    sub = "cifar-10-batches-py" if layout == "torchvision" else ""
    assert Path(info.source) == (root / sub if sub else root)


@pytest.mark.parametrize("layout", ["torchvision", "flat"])
def test_cifar100(tmp_path, layout):
    formats.write_cifar100(tmp_path, n_train=120, n_test=30, seed=2, layout=layout)
    ds = load_dataset("cifar100", tmp_path, download=False)
    _expect(ds, *synthetic_arrays(100, 3, 32, 120, 30, 2))
    assert ds.info.num_classes == 100
    assert ds.info.class_names == formats.CIFAR100_FINE
    assert ds.info.mean == (0.5071, 0.4866, 0.4409) and ds.info.std == (0.2673, 0.2564, 0.2762)


def test_svhn(tmp_path):
    formats.write_svhn(tmp_path, n_train=40, n_test=12, seed=3, n_extra=8)
    x_tr, y_tr, x_te, y_te = synthetic_arrays(10, 3, 32, 48, 12, 3)
    ds = load_dataset("svhn", tmp_path, download=False)
    _expect(ds, x_tr[:40], y_tr[:40], x_te, y_te)
    assert 0 in ds.train.labels and int(ds.train.labels.max()) <= 9  # 10 became 0
    assert not ds.info.hflip and ds.info.crop_padding == 4
    assert ds.info.mean == (0.4377, 0.4438, 0.4728)
    with_extra = load_dataset("svhn:extra=true", tmp_path, download=False)
    _expect(with_extra, x_tr, y_tr, x_te, y_te)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("layout", ["torchvision", "flat"])
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_family(tmp_path, name, layout, gz):
    root = tmp_path / "data"
    formats.write_mnist(root, n_train=20, n_test=6, seed=4, layout=layout, gz=gz, name=name)
    before = _tree(root)
    ds = load_dataset(name, root, download=False)
    x_tr, y_tr, x_te, y_te = synthetic_arrays(10, 1, 28, 20, 6, 4)
    _expect(ds, x_tr, y_tr, x_te, y_te)
    assert _tree(root) == before  # nothing decompressed into the user's directory
    info = ds.info
    assert (info.channels, info.height, info.width) == (1, 28, 28)
    if name == "mnist":
        assert info.mean == (0.1307,) and info.std == (0.3081,) and not info.hflip
    else:
        assert info.mean == (0.2860,) and info.std == (0.3530,) and info.hflip
        assert info.class_names[0] == "T-shirt/top"


@pytest.mark.skipif(not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's fashion-mnist package is not installed")
def test_real_fashion_mnist_from_debian(monkeypatch):
    monkeypatch.setattr(readers, "DEBIAN_DATA_ROOT", DEBIAN_FASHION.parent)
    ds = load_dataset("fashion-mnist", download=False)
    assert len(ds.train) == 60_000 and len(ds.test) == 10_000
    assert ds.train.images.shape == (60_000, 1, 28, 28)
    assert ds.info.num_classes == 10 and ds.info.source == str(DEBIAN_FASHION)
    assert torch.equal(torch.bincount(ds.train.labels), torch.full((10,), 6000))
    mean = ds.train.images.float().mean().item() / 255
    assert abs(mean - ds.info.mean[0]) < 1e-3


def test_digits():
    ds = load_dataset("digits")
    assert len(ds.train) + len(ds.test) == 1797
    assert ds.train.images.shape[1:] == (1, 8, 8) and ds.train.images.dtype == torch.uint8
    assert int(ds.train.images.max()) == 255 and int(ds.train.images.min()) == 0
    counts_test = torch.bincount(ds.test.labels, minlength=10)
    counts_all = counts_test + torch.bincount(ds.train.labels, minlength=10)
    assert torch.all((counts_test - 0.2 * counts_all).abs() <= 0.5)  # stratified 80/20
    assert ds.info.crop_padding == 1 and not ds.info.hflip and len(ds.info.mean) == 1
    x = ds.train.images.double() / 255
    assert abs(x.mean().item() - ds.info.mean[0]) < 1e-4
    again = load_dataset("digits")
    assert torch.equal(again.test.labels, ds.test.labels)
    other = load_dataset("digits:seed=1")
    assert not torch.equal(other.test.images, ds.test.images)
    assert len(load_dataset("digits", test_fraction=0.5).test) in range(890, 910)


def test_synthetic_determinism_and_string_form():
    a = load_dataset("synthetic:classes=5,channels=1,size=12,train=60,test=20,seed=3")
    b = load_dataset("synthetic", num_classes=5, channels=1, size=12, train=60, test=20, seed=3)
    assert torch.equal(a.train.images, b.train.images)
    assert torch.equal(a.test.labels, b.test.labels)
    assert a.train.images.shape == (60, 1, 12, 12) and a.test.images.shape == (20, 1, 12, 12)
    assert a.info.num_classes == 5 and a.info.crop_padding == 1 and not a.info.hflip
    assert torch.equal(torch.bincount(a.train.labels), torch.full((5,), 12))
    c = load_dataset("synthetic:classes=5,channels=1,size=12,train=60,test=20,seed=4")
    assert not torch.equal(a.train.images, c.train.images)
    # The test set does not depend on the size of the training set.
    d = load_dataset("synthetic:classes=5,channels=1,size=12,train=90,test=20,seed=3")
    assert torch.equal(a.test.images, d.test.images)
    default = load_dataset("synthetic")
    assert default.train.images.shape == (2000, 3, 32, 32) and len(default.test) == 500


def test_options_are_validated():
    with pytest.raises(ConfigError, match="did you mean 'seed'"):
        load_dataset("synthetic:sed=1")
    with pytest.raises(ConfigError, match="'size' must be an integer"):
        load_dataset("synthetic", size="big")
    with pytest.raises(ConfigError, match="key=value"):
        load_dataset("synthetic:seed")
    with pytest.raises(ConfigError, match="both"):
        load_dataset("synthetic:seed=1", seed=2)
    with pytest.raises(ConfigError, match="test_fraction"):
        load_dataset("digits:test_fraction=1.5")
    with pytest.raises(ConfigError, match="valid options: none"):
        load_dataset("mnist:verify=false", download=False)


def test_unknown_name_suggests_close_names():
    with pytest.raises(ConfigError, match="did you mean 'cifar10'"):
        load_dataset("cifar-10")
    with pytest.raises(ConfigError, match="expected one of: cifar10, cifar100"):
        load_dataset("imagenet")
    # Case and underscores are forgiven.
    assert load_dataset("Synthetic:train=10,test=2,size=4").info.name == "synthetic"


def test_search_order(tmp_path, monkeypatch):
    explicit, env, debian = tmp_path / "explicit", tmp_path / "env", tmp_path / "debian"
    formats.write_mnist(explicit, 4, 2, seed=1, layout="flat")
    formats.write_mnist(env, 4, 2, seed=2, layout="flat")
    formats.write_mnist(debian / "mnist", 4, 2, seed=3, layout="flat")
    monkeypatch.setenv("DAU_DATA", str(env))
    assert load_dataset("mnist", explicit, download=False).info.source == str(explicit)
    assert load_dataset("mnist", download=False).info.source == str(env)
    assert load_dataset("mnist", tmp_path / "nowhere", download=False).info.source == str(env)
    monkeypatch.delenv("DAU_DATA")
    assert load_dataset("mnist", download=False).info.source == str(debian / "mnist")
    # A data_dir may also hold one sub-directory per dataset.
    formats.write_mnist(tmp_path / "shared" / "mnist", 4, 2, seed=5)
    found = load_dataset("mnist", tmp_path / "shared", download=False)
    assert found.info.source == str(tmp_path / "shared" / "mnist" / "MNIST" / "raw")


def test_missing_everywhere_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("DAU_DATA", str(tmp_path / "env"))
    (tmp_path / "given").mkdir()
    formats.write_cifar10(tmp_path / "given", 5, 2)
    (tmp_path / "given" / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", tmp_path / "given", download=False)
    msg = str(err.value)
    for place in ("data_dir", "DAU_DATA", "Debian dataset path", "download cache",
                  "download=False"):
        assert place in msg
    assert str(tmp_path / "given") in msg and str(tmp_path / "env") in msg
    assert str(tmp_path / "debian" / "cifar10") in msg
    assert "lacks data_batch_3" in msg
    assert "does not exist" in msg
    assert "--data-dir" in msg and "DAU_DATA=DIR" in msg
    assert not (tmp_path / "env").exists()  # looking creates nothing


def test_failed_download_is_reported(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(self):
        raise RuntimeError("network unreachable")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(DataError, match=r"download into .*target.*network unreachable"):
        load_dataset("mnist", tmp_path / "target" / "deeper", download=None)
    assert not (tmp_path / "target").exists()  # the failed attempt leaves nothing behind


def test_official_counts_are_checksummed(tmp_path, monkeypatch):
    formats.write_cifar10(tmp_path, 10, 5)
    pretend = dataclasses.replace(readers._CIFAR10, official_counts=(10, 5))
    monkeypatch.setattr(readers, "_CIFAR10", pretend)
    with pytest.raises(DataError, match=r"data_batch_1: does not match the official CIFAR-10"):
        load_dataset("cifar10", tmp_path, download=False)
    assert len(load_dataset("cifar10:verify=false", tmp_path, download=False).train) == 10


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("victim", ["data_batch_3", "test_batch", "batches.meta"])
def test_corrupt_cifar_names_the_file(tmp_path, victim):
    directory = formats.write_cifar10(tmp_path, 20, 5)
    _truncate(directory / victim)
    with pytest.raises(DataError, match=re.escape(victim)):
        load_dataset("cifar10", tmp_path, download=False)


def test_cifar_bad_labels(tmp_path):
    import pickle

    directory = formats.write_cifar100(tmp_path, 20, 5, layout="flat")
    with open(directory / "test", "rb") as fh:
        entry = pickle.load(fh, encoding="latin1")
    entry["fine_labels"][0] = 100
    with open(directory / "test", "wb") as fh:
        pickle.dump(entry, fh, protocol=2)
    with pytest.raises(DataError, match=r"labels should lie in \[0, 100\)"):
        load_dataset("cifar100", tmp_path, download=False)


@pytest.mark.parametrize("gz", [True, False])
def test_corrupt_idx_names_the_file(tmp_path, gz):
    directory = formats.write_mnist(tmp_path, 20, 5, layout="flat", gz=gz)
    name = "t10k-images-idx3-ubyte" + (".gz" if gz else "")
    _truncate(directory / name, 0.7)
    with pytest.raises(DataError, match=re.escape(name)):
        load_dataset("mnist", tmp_path, download=False)


def test_not_gzip_and_mismatched_idx(tmp_path):
    directory = formats.write_mnist(tmp_path / "a", 20, 5, layout="flat")
    (directory / "train-labels-idx1-ubyte.gz").write_bytes(b"this is not gzip data")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz"):
        load_dataset("mnist", directory, download=False)
    directory = formats.write_mnist(tmp_path / "b", 20, 5, layout="flat", gz=False)
    other = formats.write_mnist(tmp_path / "c", 21, 5, layout="flat", gz=False)
    os.replace(other / "train-labels-idx1-ubyte", directory / "train-labels-idx1-ubyte")
    with pytest.raises(DataError, match=r"20 images but .* 21 labels"):
        load_dataset("mnist", directory, download=False)


def test_corrupt_svhn_names_the_file(tmp_path):
    formats.write_svhn(tmp_path, 20, 5)
    _truncate(tmp_path / "test_32x32.mat")
    with pytest.raises(DataError, match=r"test_32x32\.mat"):
        load_dataset("svhn", tmp_path, download=False)


def test_gz_is_preferred_only_when_plain_is_missing(tmp_path):
    directory = formats.write_mnist(tmp_path, 8, 3, layout="flat", gz=True)
    with gzip.open(directory / "train-images-idx3-ubyte.gz") as fh:
        (directory / "train-images-idx3-ubyte").write_bytes(fh.read())
    (directory / "train-images-idx3-ubyte.gz").write_bytes(b"broken")
    assert len(load_dataset("mnist", tmp_path, download=False).train) == 8


def test_image_data_validation_and_subset():
    images = torch.arange(5 * 1 * 2 * 2, dtype=torch.uint8).reshape(5, 1, 2, 2)
    data = ImageData(images, torch.tensor([0, 1, 2, 3, 4]))
    assert len(data) == 5
    sub = data.subset(np.array([4, 0, 4]))
    assert sub.labels.tolist() == [4, 0, 4] and torch.equal(sub.images[1], images[0])
    assert data.subset(torch.tensor([True, False, True, False, False])).labels.tolist() == [0, 2]
    assert len(data.subset([])) == 0
    with pytest.raises(DataError, match=r"\[0, 5\)"):
        data.subset([1, 5])
    with pytest.raises(DataError, match="uint8"):
        ImageData(images.float(), data.labels)
    with pytest.raises(DataError, match="int64"):
        ImageData(images, data.labels.int())
    with pytest.raises(DataError, match="5 images but 4 labels"):
        ImageData(images, data.labels[:4])
    with pytest.raises(DataError, match="uint8"):
        ImageData(images[0], data.labels)  # not 4-D


def synthetic_arrays(num_classes, channels, size, n_train, n_test, seed):
    return builtin.synthetic_arrays(
        num_classes=num_classes, channels=channels, size=size, n_train=n_train, n_test=n_test,
        seed=seed,
    )


def test_cifar_meta_without_names(tmp_path):
    import pickle

    directory = formats.write_cifar10(tmp_path, 10, 5)
    with open(directory / "batches.meta", "wb") as fh:
        pickle.dump({"num_vis": 3072}, fh, protocol=2)
    with pytest.raises(DataError, match=r"batches\.meta: has no 'label_names' entry"):
        load_dataset("cifar10", tmp_path, download=False)
