"""Streamed sources (ImageFolder trees, file lists, any torch Dataset) give the batches,
fingerprints and splits that the same pixels give in memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dau.data import StreamData, from_torch, image_folder, iterate_batches, load_dataset
from dau.data.fingerprints import dataset_fingerprints
from dau.data.formats import write_image_folder
from dau.data.splits import plan_split
from dau.data.streaming import DecodedImages
from dau.data.types import channel_stats
from dau.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def memory() -> object:
    return load_dataset("synthetic:classes=4,channels=3,size=8,train=90,test=30,seed=2")


@pytest.fixture(scope="module")
def tree(memory: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("folder") / "photos", memory)


def test_an_exported_tree_reads_back_the_same_samples_in_the_same_order(memory, tree) -> None:
    streamed = load_dataset(f"imagefolder:{tree}")
    assert streamed.streamed and not memory.streamed
    assert streamed.info.spec == f"imagefolder:root={tree.resolve()}"
    assert (streamed.info.num_classes, streamed.info.channels) == (4, 3)
    for part in ("train", "test"):
        a, b = getattr(memory, part), getattr(streamed, part)
        assert torch.equal(a.labels, b.labels)
        assert torch.equal(b.materialize().images, a.images)
    fm, fs = dataset_fingerprints(memory), dataset_fingerprints(streamed)
    assert np.array_equal(fm.train, fs.train) and np.array_equal(fm.test, fs.test)
    plan_m = plan_split(memory.train.labels, 4, "random:10", 1, 0.1)
    plan_s = plan_split(streamed.train.labels, 4, "random:10", 1, 0.1)
    assert plan_m.fingerprint == plan_s.fingerprint


@pytest.mark.parametrize("workers", [0, 1])
def test_augmented_batches_are_bit_identical(memory, tree, workers: int) -> None:
    streamed = image_folder(tree, hflip=True, crop_padding=2, workers=workers)
    info = streamed.info
    order = torch.randperm(90, generator=torch.Generator().manual_seed(3))[:37]
    got = list(iterate_batches(streamed.train.subset(torch.arange(5, 90)), order[order < 85],
                               8, augment=True, info=info,
                               generator=torch.Generator().manual_seed(7)))
    want = list(iterate_batches(memory.train.subset(torch.arange(5, 90)), order[order < 85],
                                8, augment=True, info=info,
                                generator=torch.Generator().manual_seed(7)))
    assert len(got) == len(want) > 1
    for (xs, ys), (xm, ym) in zip(got, want, strict=True):
        assert xs.dtype == torch.float32 and torch.equal(xs, xm) and torch.equal(ys, ym)


def test_a_tree_without_train_dir_is_split_per_class(tmp_path: Path) -> None:
    for c in range(3):
        (tmp_path / f"c{c}").mkdir()
        for i in range(10):
            Image.fromarray(np.full((5, 6), 20 * c + i, np.uint8)).save(tmp_path / f"c{c}" / f"{i}.png")
    data = image_folder(tmp_path, test_fraction=0.2, seed=4)
    assert (len(data.train), len(data.test)) == (24, 6)
    assert data.info.class_names == ("c0", "c1", "c2") and data.info.channels == 1
    assert np.bincount(data.test.labels.numpy()).tolist() == [2, 2, 2]
    assert (data.info.height, data.info.width) == (5, 6)


def test_bad_trees_give_clear_errors(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    for c, size in (("a", (4, 4)), ("b", (6, 4))):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.zeros(size, np.uint8)).save(root / c / f"{i}.png")
    with pytest.raises(DataError, match=r"2 different sizes.*size=H"):
        image_folder(root)
    assert image_folder(root, size=4).info.height == 4  # resized on reading
    (root / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"not readable images.*broken\.png"):
        image_folder(root, size=4)
    with pytest.raises(DataError, match="not a directory"):
        image_folder(tmp_path / "missing")
    with pytest.raises(DataError, match="test_fraction"):
        image_folder(root, test_fraction=1.5)
    with pytest.raises(ConfigError, match="unknown option 'colour'"):
        load_dataset(f"imagefolder:{root},colour=1")


def test_file_lists_csv_and_jsonl(memory, tree, tmp_path: Path) -> None:
    files = sorted((tree / "train").rglob("*.png"), key=lambda p: p.name)
    names = memory.info.class_names
    csv_file = tmp_path / "train.csv"
    csv_file.write_text("path,label\n" + "".join(
        f"{p},{p.parent.name}\n" for p in files))
    jsonl = tmp_path / "test.jsonl"
    jsonl.write_text("".join(json.dumps({"path": str(p), "label": p.parent.name}) + "\n"
                             for p in sorted((tree / "test").rglob("*.png"), key=lambda p: p.name)))
    data = load_dataset(f"filelist:{csv_file},test_path={jsonl}")
    assert data.info.class_names == tuple(f"{i}-{n}" for i, n in enumerate(names))
    assert torch.equal(data.train.materialize().images, memory.train.images)
    assert torch.equal(data.train.labels, memory.train.labels)  # names sorted = label order
    assert torch.equal(data.test.labels, memory.test.labels)
    bad = tmp_path / "bad.csv"
    bad.write_text("only-one-column\n")
    with pytest.raises(DataError, match="row 1 has 1 column"):
        load_dataset(f"filelist:{bad}")


class Pairs(torch.utils.data.Dataset):
    """A user's map-style dataset without ``.targets``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])


def test_any_torch_dataset(memory) -> None:
    data = from_torch(Pairs(memory.train.images, memory.train.labels),
                      Pairs(memory.test.images, memory.test.labels), workers=0)
    assert isinstance(data.train, StreamData) and data.info.num_classes == 4
    assert torch.equal(data.train.labels, memory.train.labels)
    fps = dataset_fingerprints(data)
    assert np.array_equal(fps.train, dataset_fingerprints(memory).train)
    with pytest.raises(DataError, match="num_classes"):
        from_torch(Pairs(memory.train.images, memory.train.labels), num_classes=3, workers=0)
    floats = from_torch(Pairs(memory.train.images.float() / 255, memory.train.labels), workers=0)
    x, _ = next(iterate_batches(floats.train, torch.arange(4), 4, augment=False))
    assert torch.equal(x, memory.train.images[:4].float() / 255)  # float samples used as given
    with pytest.raises(DataError, match="uint8 pixels"):
        dataset_fingerprints(floats)


def test_predictions_on_a_streamed_part_equal_in_memory(memory, tree) -> None:
    from dau.eval import predict
    from dau.models import create_model

    model = create_model("resnet18", num_classes=4, width=0.125).eval()
    streamed = image_folder(tree, workers=0)
    a = predict(model, memory.test, batch_size=7, progress=False)
    b = predict(model, streamed.test, batch_size=7, progress=False)
    np.testing.assert_array_equal(a.probs, b.probs)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_a_files_request_resolves_to_the_same_samples(memory, tree, tmp_path: Path) -> None:
    from dau.data.requests import plan_forget

    files = sorted((tree / "train").rglob("*.png"), key=lambda p: p.name)[3:40:4]
    listing = tmp_path / "request.txt"
    listing.write_text("".join(f"{p}\n" for p in files) + f"{tmp_path / 'elsewhere.png'}\n")
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(tmp_path / "elsewhere.png")
    streamed = image_folder(tree, workers=0)
    plan_m, record_m = plan_forget(memory, f"files:{listing}", 1, 0.1)
    plan_s, record_s = plan_forget(streamed, f"files:{listing}", 1, 0.1)
    assert plan_m.fingerprint == plan_s.fingerprint and len(plan_s.forget) > 0
    assert record_m["resolution"] == record_s["resolution"]
    assert record_s["summary"]["absent"] == 1  # the file that is not in the dataset


def test_fingerprints_of_files_are_cached_until_a_file_changes(memory, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tree = write_image_folder(tmp_path / "tree", memory)
    first = image_folder(tree, workers=0)
    fps = first.train.fingerprints()
    cached = list((tmp_path / "cache" / "dau" / "fingerprints").glob("*.npz"))
    assert len(cached) == 1
    assert np.array_equal(image_folder(tree, workers=0).train.subset([4, 2]).fingerprints(),
                          fps[[4, 2]])
    victim = sorted((tree / "train").rglob("*.png"), key=lambda p: p.name)[0]
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(victim)
    changed = image_folder(tree, workers=0).train.fingerprints()
    assert not np.array_equal(changed[0], fps[0]) and np.array_equal(changed[1:], fps[1:])


def test_normalisation_of_a_tree_is_exact_and_comes_from_the_cached_pass(
        memory, tmp_path, monkeypatch) -> None:
    """The statistics are those of every training pixel (as for the same pixels in memory),
    from the one decoding pass that fingerprints, so a second load decodes nothing."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tree = write_image_folder(tmp_path / "tree", memory)
    streamed = image_folder(tree, workers=0)
    assert (streamed.info.mean, streamed.info.std) == channel_stats(memory.train.images)
    again = image_folder(tree, workers=0)
    monkeypatch.setattr(DecodedImages, "__getitem__", lambda *_: pytest.fail("decoded again"))
    assert again.info.mean == streamed.info.mean and len(again.train.fingerprints()) == len(memory.train)
    view = again.train.subset(torch.arange(10))
    monkeypatch.undo()
    assert view.stats() == channel_stats(memory.train.images[:10])


def test_an_exported_tree_keeps_labels_whose_names_do_not_sort(tmp_path: Path) -> None:
    """Class folders are numbered in sorted order: the writer prefixes each with its label
    (class_10 would otherwise come before class_2; Fashion-MNIST's names do not sort either)."""
    data = load_dataset("synthetic:classes=12,channels=1,size=4,train=48,test=12,seed=1")
    streamed = image_folder(write_image_folder(tmp_path / "tree", data), workers=0)
    assert torch.equal(streamed.train.labels, data.train.labels)
    assert torch.equal(streamed.test.labels, data.test.labels)
    assert streamed.info.class_names[10] == "10-class_10"
