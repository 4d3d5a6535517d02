"""Batching and augmentation over in-memory data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dau.data import DatasetInfo, ImageData
from dau.data.loaders import augment, iterate_batches, to_device
from dau.errors import DataError


def _info(crop_padding: int = 2, hflip: bool = True, channels: int = 3, size: int = 8):
    return DatasetInfo(
        name="t", num_classes=4, channels=channels, height=size, width=size,
        mean=(0.5,) * channels, std=(0.25,) * channels, class_names=("a", "b", "c", "d"),
        hflip=hflip, crop_padding=crop_padding, source="test",
    )


def _distinct_images(n: int, c: int = 3, h: int = 8, w: int = 8) -> torch.Tensor:
    """Images whose every pixel is nonzero and distinct within a sample."""
    base = torch.arange(c * h * w).reshape(c, h, w) % 250 + 1
    return torch.stack([(base + i) % 250 + 1 for i in range(n)]).to(torch.uint8)


def _candidates(image: torch.Tensor, padding: int, hflip: bool) -> list[torch.Tensor]:
    """Every output the reference transform (pad, crop, maybe flip) can give."""
    _, h, w = image.shape
    padded = F.pad(image, (padding,) * 4)
    out = []
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = padded[:, dy:dy + h, dx:dx + w]
            out.append(crop)
            if hflip:
                out.append(crop.flip(-1))
    return out


def _which(result: torch.Tensor, image: torch.Tensor, padding: int, hflip: bool) -> int:
    cands = _candidates(image, padding, hflip)
    hits = [k for k, cand in enumerate(cands) if torch.equal(cand, result)]
    assert len(hits) == 1, "output is not a padded crop (or flip) of its input"
    return hits[0]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_no_augmentation_is_plain_scaling():
    batch = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    out = augment(batch, crop_padding=0, hflip=False, generator=_gen(0))
    assert out.dtype == torch.float32 and out.shape == batch.shape
    assert torch.equal(out, batch.float() / 255)


def test_crop_shifts_content_and_stays_in_range():
    batch = _distinct_images(64)
    out = augment(batch, crop_padding=2, hflip=False, generator=_gen(1))
    assert out.shape == batch.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    as_u8 = (out * 255).round().to(torch.uint8)
    chosen = {_which(as_u8[i], batch[i], 2, False) for i in range(64)}
    assert len(chosen) > 10  # many different offsets, not the identity every time
    assert (as_u8 == 0).any()  # zero padding shows up at the borders


def test_flip_flips():
    batch = _distinct_images(64)
    out = augment(batch, crop_padding=0, hflip=True, generator=_gen(2))
    as_u8 = (out * 255).round().to(torch.uint8)
    flipped = [torch.equal(as_u8[i], batch[i].flip(-1)) for i in range(64)]
    kept = [torch.equal(as_u8[i], batch[i]) for i in range(64)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 15 < sum(flipped) < 49


def test_crop_and_flip_together():
    batch = _distinct_images(48, c=1, h=6, w=5)
    out = augment(batch, crop_padding=1, hflip=True, generator=_gen(3))
    as_u8 = (out * 255).round().to(torch.uint8)
    kinds = [_which(as_u8[i], batch[i], 1, True) % 2 for i in range(48)]
    assert 0 < sum(kinds) < 48  # some flipped, some not


def test_augment_is_deterministic_with_a_seeded_generator():
    batch = _distinct_images(32)
    a = augment(batch, crop_padding=4, hflip=True, generator=_gen(7))
    b = augment(batch, crop_padding=4, hflip=True, generator=_gen(7))
    c = augment(batch, crop_padding=4, hflip=True, generator=_gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_augment_rejects_bad_input():
    with pytest.raises(DataError, match="uint8"):
        augment(torch.zeros(2, 3, 4, 4), crop_padding=1, hflip=False)
    with pytest.raises(DataError, match="crop_padding"):
        augment(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), crop_padding=-1, hflip=False)
    empty = augment(torch.zeros(0, 3, 4, 4, dtype=torch.uint8), crop_padding=1, hflip=True)
    assert empty.shape == (0, 3, 4, 4)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 6), c=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7),
    padding=st.integers(0, 3), hflip=st.booleans(), seed=st.integers(0, 2**31),
)
def test_augment_outputs_are_reference_transforms(n, c, h, w, padding, hflip, seed):
    batch = _distinct_images(n, c, h, w)
    out = augment(batch, crop_padding=padding, hflip=hflip, generator=_gen(seed))
    as_u8 = (out * 255).round().to(torch.uint8)
    for i in range(n):
        cands = _candidates(batch[i], padding, hflip)
        assert any(torch.equal(cand, as_u8[i]) for cand in cands)


def _data(n: int = 10) -> ImageData:
    images = _distinct_images(n)
    return ImageData(images, torch.arange(n, dtype=torch.int64) % 4)


def test_iterate_batches_follows_the_order():
    data = _data(10)
    order = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5])
    batches = list(iterate_batches(data, order, 4, augment=False))
    assert [len(y) for _, y in batches] == [4, 4, 1]
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert torch.equal(y, data.labels[order])
    assert torch.equal(x, data.images[order].float() / 255)
    dropped = list(iterate_batches(data, torch.from_numpy(order), 4, augment=False,
                                   drop_last=True))
    assert [len(y) for _, y in dropped] == [4, 4]
    assert list(iterate_batches(data, np.zeros(0, dtype=np.int64), 4, augment=False)) == []


def test_iterate_batches_augments_with_the_dataset_settings():
    data = _data(16)
    order = torch.arange(16)
    info = _info(crop_padding=2, hflip=True)
    a = [x for x, _ in iterate_batches(data, order, 5, augment=True, info=info,
                                       generator=_gen(0))]
    b = [x for x, _ in iterate_batches(data, order, 5, augment=True, info=info,
                                       generator=_gen(0))]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    x = torch.cat(a)
    assert not torch.equal(x, data.images.float() / 255)
    as_u8 = (x * 255).round().to(torch.uint8)
    for i in range(16):
        _which(as_u8[i], data.images[i], 2, True)
    # A dataset without augmentation settings gets none, even with augment=True.
    plain = torch.cat([x for x, _ in iterate_batches(
        data, order, 5, augment=True, info=_info(crop_padding=0, hflip=False),
        generator=_gen(0))])
    assert torch.equal(plain, data.images.float() / 255)


def test_iterate_batches_checks_its_arguments():
    data = _data(10)
    with pytest.raises(DataError, match=r"\[0, 10\)"):
        iterate_batches(data, [0, 10], 4, augment=False)
    with pytest.raises(DataError, match="batch_size"):
        iterate_batches(data, [0, 1], 0, augment=False)
    with pytest.raises(DataError, match="needs info"):
        iterate_batches(data, [0, 1], 2, augment=True)
    with pytest.raises(DataError, match="integers"):
        iterate_batches(data, np.array([0.5]), 2, augment=False)


def test_to_device_cpu_is_a_no_op():
    data = _data(4)
    assert to_device(data, "cpu") is data


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_and_augmentation():
    data = _data(32)
    resident = to_device(data, "cuda")
    assert resident.images.is_cuda and resident.labels.is_cuda
    gen = torch.Generator(device="cuda").manual_seed(0)
    batches = list(iterate_batches(resident, np.arange(32), 8, augment=True,
                                   info=_info(2, True), device="cuda", generator=gen))
    for x, y in batches:
        assert x.is_cuda and y.is_cuda and x.dtype == torch.float32
    x = torch.cat([b[0] for b in batches]).cpu()
    as_u8 = (x * 255).round().to(torch.uint8)
    for i in range(32):
        _which(as_u8[i], data.images[i], 2, True)
    # CPU data, CUDA batches, CPU generator.
    moved = list(iterate_batches(data, np.arange(32), 8, augment=True, info=_info(2, True),
                                 device="cuda", generator=_gen(0)))
    assert all(x.is_cuda for x, _ in moved)
