"""torch.ops.dau.{noisy_replicate, sensitivity_features, cross_correlation_loss}:
fused kernels vs the reference, gradients, gradcheck, opcheck, TorchScript,
torch.compile, determinism and statistics of the noise, edge cases, bad inputs."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

import dau.ops
from dau.errors import KernelUnavailableError
from dau.ops import _library, reference

pytestmark = [pytest.mark.usefixtures("ops_loaded"), pytest.mark.cpu_kernels]

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
FLOAT_DTYPES = [torch.float32, torch.float64]
ALL_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
TOLERANCE: dict[torch.dtype, dict[str, float]] = {
    torch.float32: dict(rtol=1e-5, atol=1e-5),
    torch.float64: dict(rtol=1e-10, atol=1e-10),
    torch.float16: dict(rtol=2e-3, atol=2e-3),
    torch.bfloat16: dict(rtol=1.6e-2, atol=1.6e-2),
}
dtype_id: Callable[[Any], str] = lambda d: str(d).removeprefix("torch.")  # noqa: E731


def randn(*shape: int, dtype: torch.dtype = torch.float32, device: str = "cpu",
          seed: int = 0) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype).to(device)


def non_contiguous(t: Tensor) -> Tensor:
    """A strided (every other element) view with the values of ``t``."""
    base = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype, device=t.device)
    out = base[..., ::2]
    out.copy_(t)
    assert not out.is_contiguous()
    return out


def opcheck(op: Any, args: tuple[Any, ...]) -> None:
    """torch.library.opcheck without the dynamic-shape AOT test (our ops read shapes)."""
    torch.library.opcheck(op, args)


# ------------------------------------------------------------ noisy_replicate ---


NR_SHAPES = [(4, 3, 5, 5), (1, 7), (3, 2, 2), (6, 1)]


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("shape", NR_SHAPES, ids=str)
@pytest.mark.parametrize("offset", [0, 1, 12345])
def test_noisy_replicate_matches_reference(
    device: str, dtype: torch.dtype, shape: tuple[int, ...], offset: int
) -> None:
    x = randn(*shape, dtype=dtype, device=device)
    for m in (1, 3):
        fused = dau.ops.noisy_replicate(x, m, 0.7, 42, offset)
        expected = dau.ops.noisy_replicate(x, m, 0.7, 42, offset, kernels="reference")
        assert fused.shape == ((m + 1) * shape[0], *shape[1:])
        assert fused.dtype == dtype and fused.is_contiguous()
        assert torch.equal(fused[: shape[0]], x)
        # the noise has float32 precision whatever the dtype
        tolerance = TOLERANCE[torch.float32 if dtype == torch.float64 else dtype]
        torch.testing.assert_close(fused, expected, **tolerance)


def test_noisy_replicate_non_contiguous_input(device: str) -> None:
    x = randn(3, 4, 5, device=device)
    y = non_contiguous(x)
    assert torch.equal(dau.ops.noisy_replicate(y, 2, 0.5, 1, 0),
                       dau.ops.noisy_replicate(x, 2, 0.5, 1, 0))


def test_splitmix64_known_values() -> None:
    # The first two outputs of SplitMix64 seeded with 0.
    assert reference.mix64(reference.GOLDEN_GAMMA) == 0xE220A8397B1DCDAF
    assert reference.mix64(2 * reference.GOLDEN_GAMMA) == 0x6E789E6AA1B965F4


def test_counter_normal_follows_its_definition() -> None:
    """The tensor version of the generator equals a scalar transcription of its docstring."""
    seed = -5
    key = reference.seed_key(seed)
    for c in [0, 1, 2, 3, 1001, 2**40 + 7]:
        z = reference.mix64(key + (c >> 1) * reference.GOLDEN_GAMMA)
        u1 = ((z >> 40) + 1) * 2.0**-24
        u2 = (z & 0xFFFFFF) * 2.0**-24
        trig = math.cos if c % 2 == 0 else math.sin
        expected = math.sqrt(-2 * math.log(u1)) * trig(2 * math.pi * u2)
        got = reference.counter_normal(seed, torch.tensor([c])).item()
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_noisy_replicate_is_deterministic_and_counter_based(device: str) -> None:
    x = randn(4, 3, 2, device=device)
    a = dau.ops.noisy_replicate(x, 3, 1.0, 7, 100)
    assert torch.equal(a, dau.ops.noisy_replicate(x, 3, 1.0, 7, 100))
    assert not torch.equal(a[4:], dau.ops.noisy_replicate(x, 3, 1.0, 7, 101)[4:])
    assert not torch.equal(a[4:], dau.ops.noisy_replicate(x, 3, 1.0, 8, 100)[4:])
    # Copy j + 1 with offset o is copy j with offset o + B * D.
    b = dau.ops.noisy_replicate(x, 2, 1.0, 7, 100 + x.numel())
    assert torch.equal(a[8:], b[4:])
    # The noise does not depend on x: x + sigma * n.
    zero = dau.ops.noisy_replicate(torch.zeros_like(x), 3, 1.0, 7, 100)
    torch.testing.assert_close(a[4:] - x.repeat(3, 1, 1), zero[4:])


def test_noisy_replicate_sigma_scales_the_noise() -> None:
    x = torch.zeros(10, 10)
    unit = dau.ops.noisy_replicate(x, 2, 1.0, 3, 0)[10:]
    torch.testing.assert_close(dau.ops.noisy_replicate(x, 2, 0.25, 3, 0)[10:], 0.25 * unit)
    assert torch.equal(dau.ops.noisy_replicate(x, 2, 0.0, 3, 0)[10:], torch.zeros(20, 10))


def test_noisy_replicate_noise_is_standard_normal() -> None:
    count = 1_000_000
    noise = dau.ops.noisy_replicate(torch.zeros(count), 1, 1.0, 2024, 0)[count:].double()
    tol = 5 / math.sqrt(count)
    assert abs(noise.mean().item()) < tol
    assert abs(noise.std().item() - 1) < tol
    assert abs((noise**4).mean().item() - 3) < 30 * tol  # kurtosis of a normal
    assert abs((noise.abs() < 1).double().mean().item() - 0.682689) < tol
    assert abs((noise.abs() < 2).double().mean().item() - 0.954500) < tol
    # the two normals of one draw are uncorrelated, and so are neighbours
    pairs = noise.view(-1, 2)
    assert abs((pairs[:, 0] * pairs[:, 1]).mean().item()) < tol
    assert abs((noise[1:-1:2] * noise[2::2]).mean().item()) < 2 * tol
    assert noise.abs().max().item() <= math.sqrt(48 * math.log(2)) + 1e-4


def test_noisy_replicate_gradient(device: str) -> None:
    x = randn(3, 2, 2, dtype=torch.float64, device=device).requires_grad_()
    torch.autograd.gradcheck(lambda t: dau.ops.noisy_replicate(t, 2, 0.3, 5, 11), (x,))
    out = dau.ops.noisy_replicate(x, 4, 0.3, 5, 11)
    grad = randn(*out.shape, dtype=torch.float64, device=device, seed=3)
    (gx,) = torch.autograd.grad(out, x, grad)
    torch.testing.assert_close(gx, grad.view(5, 3, 2, 2).sum(0))


def test_noisy_replicate_opcheck_script_compile() -> None:
    x = randn(3, 4)
    opcheck(torch.ops.dau.noisy_replicate.default, (x, 2, 0.5, 9, 3))
    opcheck(torch.ops.dau.noisy_replicate.default, (x.double().requires_grad_(), 1, 0.5, 9, 3))

    def f(t: Tensor, offset: int) -> Tensor:
        return torch.ops.dau.noisy_replicate(t, 2, 0.5, 9, offset)

    expected = f(x, 3)
    assert torch.equal(torch.jit.script(f)(x, 3), expected)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x, 3), expected)


def test_noisy_replicate_bad_inputs() -> None:
    x = torch.zeros(2, 3)
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (x, dict(m=0), "m must be >= 1"),
        (x.long(), {}, "dtype"),
        (torch.tensor(1.0), {}, "batch dimension"),
        (x, dict(offset=-1), "offset must be >= 0"),
        (x, dict(sigma=float("nan")), "sigma must be finite"),
    ]
    for kernels in ("fused", "reference"):
        for tensor, overrides, message in cases:
            args = dict(m=2, sigma=0.5, seed=1, offset=0) | overrides
            with pytest.raises(RuntimeError, match=message):
                dau.ops.noisy_replicate(tensor, kernels=kernels, **args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kernels"):
        dau.ops.noisy_replicate(x, 1, 0.5, 1, 0, kernels="fast")  # type: ignore[arg-type]


def test_noisy_replicate_large_seed_and_empty() -> None:
    x = torch.zeros(2, 3)
    # seeds are taken mod 2**64
    assert torch.equal(dau.ops.noisy_replicate(x, 1, 1.0, 2**64 + 5, 0),
                       dau.ops.noisy_replicate(x, 1, 1.0, 5, 0))
    torch.testing.assert_close(dau.ops.noisy_replicate(x, 1, 1.0, 2**63 + 1, 0),
                               dau.ops.noisy_replicate(x, 1, 1.0, 2**63 + 1, 0,
                                                       kernels="reference"))
    assert dau.ops.noisy_replicate(torch.zeros(0, 3), 2, 1.0, 1, 0).shape == (0, 3)


def test_missing_op_is_kernel_unavailable() -> None:
    with pytest.raises(KernelUnavailableError, match="no op 'no_such_op'"):
        _library.require_device(torch.device("cpu"), "no_such_op")


# ------------------------------------------------------- sensitivity_features ---


def sensitivity_case(
    batch: int, classes: int, m: int, dtype: torch.dtype, device: str, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    logits = randn(batch, classes, dtype=dtype, device=device, seed=seed)
    noisy = randn(m * batch, classes, dtype=dtype, device=device, seed=seed + 1)
    labels = torch.randint(0, classes, (batch,), generator=torch.Generator().manual_seed(seed))
    return logits, noisy, labels.to(device)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
# The last three span several blocks of rows (and threads) of the CPU kernels.
@pytest.mark.parametrize(("batch", "classes", "m"),
                         [(5, 4, 3), (1, 10, 1), (8, 100, 2), (300, 10, 3), (40, 1000, 2),
                          (3, 2100, 1)])
@pytest.mark.parametrize("contiguous", [True, False])
def test_sensitivity_features_matches_reference(
    device: str, dtype: torch.dtype, batch: int, classes: int, m: int, contiguous: bool
) -> None:
    logits, noisy, labels = sensitivity_case(batch, classes, m, dtype, device)
    if not contiguous:
        logits, noisy = non_contiguous(logits), non_contiguous(noisy)
    sigma = 0.3
    fused = dau.ops.sensitivity_features(logits, noisy, labels, sigma, classes)
    expected = dau.ops.sensitivity_features(logits, noisy, labels, sigma, classes,
                                            kernels="reference")
    assert fused.shape == (batch, 3 * classes) and fused.dtype == dtype
    assert torch.equal(fused[:, :classes], logits)
    assert torch.equal(fused[:, classes : 2 * classes].argmax(1), labels)
    torch.testing.assert_close(fused, expected, **TOLERANCE[dtype])
    if dtype in FLOAT_DTYPES:
        grads = []
        for kernels in ("fused", "reference"):
            lg, nz = logits.clone().requires_grad_(), noisy.clone().requires_grad_()
            out = dau.ops.sensitivity_features(lg, nz, labels, sigma, classes,
                                               kernels=kernels)  # type: ignore[arg-type]
            grad_out = randn(*out.shape, dtype=dtype, device=device, seed=9)
            grads.append(torch.autograd.grad(out, (lg, nz), grad_out))
        for a, b in zip(*grads, strict=True):
            torch.testing.assert_close(a, b, **TOLERANCE[dtype])


def test_sensitivity_features_ties_have_zero_gradient(device: str) -> None:
    logits, noisy, labels = sensitivity_case(3, 4, 2, torch.float64, device)
    noisy[:3] = logits  # copy 0 equals the clean logits: |0|' = 0 as in torch
    lg, nz = logits.requires_grad_(), noisy.requires_grad_()
    out = dau.ops.sensitivity_features(lg, nz, labels, 0.5, 4)
    grad_logits, grad_noisy = torch.autograd.grad(out[:, 8:].sum(), (lg, nz))
    assert torch.equal(grad_noisy[:3], torch.zeros(3, 4, dtype=torch.float64, device=device))
    expected = torch.sign(noisy[3:] - logits).detach() / (2 * 0.5)
    torch.testing.assert_close(grad_noisy[3:], expected)
    torch.testing.assert_close(grad_logits, -expected)


def test_sensitivity_features_gradcheck(device: str) -> None:
    logits, noisy, labels = sensitivity_case(3, 5, 2, torch.float64, device)
    torch.autograd.gradcheck(
        lambda a, b: dau.ops.sensitivity_features(a, b, labels, 0.7, 5),
        (logits.requires_grad_(), noisy.requires_grad_()),
    )


def test_sensitivity_features_opcheck_script_compile() -> None:
    logits, noisy, labels = sensitivity_case(4, 3, 2, torch.float64, "cpu")
    opcheck(torch.ops.dau.sensitivity_features.default, (logits, noisy, labels, 0.5, 3))
    opcheck(torch.ops.dau.sensitivity_features.default,
            (logits.clone().requires_grad_(), noisy.clone().requires_grad_(), labels, 0.5, 3))
    grad = randn(4, 9, dtype=torch.float64)
    opcheck(torch.ops.dau.sensitivity_features_backward.default, (grad, logits, noisy, 0.5))

    def f(a: Tensor, b: Tensor, y: Tensor) -> Tensor:
        return torch.ops.dau.sensitivity_features(a, b, y, 0.5, 3)

    expected = f(logits, noisy, labels)
    assert torch.equal(torch.jit.script(f)(logits, noisy, labels), expected)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(logits, noisy, labels), expected)


@pytest.mark.parametrize("kernels", ["fused", "reference"])
def test_sensitivity_features_bad_inputs(kernels: str) -> None:
    logits, noisy, labels = sensitivity_case(4, 3, 2, torch.float32, "cpu")
    cases: list[tuple[tuple[Any, ...], str]] = [
        ((logits, noisy, labels, 0.5, 4), "num_classes is 4 but logits has 3 columns"),
        ((logits, noisy, torch.tensor([0, 1, 3, 0]), 0.5, 3), "label 3 is out of range"),
        ((logits, noisy, torch.tensor([0, -1, 2, 0]), 0.5, 3), "label -1 is out of range"),
        ((logits, noisy[:7], labels, 0.5, 3), "not a positive multiple of the batch size 4"),
        ((logits, noisy[:, :2], labels, 0.5, 3), "noisy_logits must be"),
        ((logits, noisy, labels.int(), 0.5, 3), "must be int64"),
        ((logits, noisy, labels[:3], 0.5, 3), "labels must be 1-D"),
        ((logits, noisy.double(), labels, 0.5, 3), "noisy_logits has dtype"),
        ((logits, noisy, labels, 0.0, 3), "sigma must be finite and > 0"),
        ((logits[0], noisy, labels, 0.5, 3), "logits must be 2-D"),
        ((logits.long(), noisy.long(), labels, 0.5, 3), "dtype"),
    ]
    for args, message in cases:
        with pytest.raises(RuntimeError, match=message):
            dau.ops.sensitivity_features(*args, kernels=kernels)  # type: ignore[arg-type]


# ----------------------------------------------------- cross_correlation_loss ---

# (B_v, B_f, D_v, D_f): equal and unequal batches and widths; small widths
# (computed through M) and wide ones (through the Gram matrices); the last two
# are large enough for the CPU kernels to split their columns among threads.
CC_SHAPES = [(6, 6, 4, 4), (9, 7, 5, 3), (7, 9, 3, 6), (5, 5, 40, 40), (8, 6, 30, 20),
             (300, 290, 150, 120), (130, 140, 300, 260)]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("shape", CC_SHAPES, ids=str)
@pytest.mark.parametrize("weight", [0.0, 0.005, 1.5])
def test_cross_correlation_loss_matches_reference(
    device: str, dtype: torch.dtype, shape: tuple[int, int, int, int], weight: float
) -> None:
    bv, bf, dv, df = shape
    val = randn(bv, dv, dtype=dtype, device=device, seed=1)
    forget = randn(bf, df, dtype=dtype, device=device, seed=2)
    results = []
    for kernels in ("fused", "reference"):
        v, f = val.clone().requires_grad_(), forget.clone().requires_grad_()
        loss = dau.ops.cross_correlation_loss(v, f, weight, 1e-5,
                                              kernels=kernels)  # type: ignore[arg-type]
        assert loss.shape == () and loss.dtype == dtype
        results.append((loss, *torch.autograd.grad(loss, (v, f))))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, **TOLERANCE[dtype])
    rows = min(bv, bf)
    grad_val, grad_forget = results[0][1:]
    assert torch.equal(grad_val[rows:], torch.zeros_like(grad_val[rows:]))
    assert torch.equal(grad_forget[rows:], torch.zeros_like(grad_forget[rows:]))


def test_cross_correlation_loss_both_paths_agree() -> None:
    """n much larger and much smaller than the widths picks M and the Gram route."""
    for n, d in [(64, 3), (3, 64)]:
        val, forget = randn(n, d, dtype=torch.float64, seed=3), randn(n, d, dtype=torch.float64)
        v, f = val.clone().requires_grad_(), forget.clone().requires_grad_()
        fused = dau.ops.cross_correlation_loss(v, f, 0.1, 1e-5)
        expected = reference.cross_correlation_loss(val, forget, 0.1, 1e-5)
        torch.testing.assert_close(fused, expected)
        torch.autograd.gradcheck(
            lambda a, b: dau.ops.cross_correlation_loss(a, b, 0.1, 1e-5), (v, f)
        )


def test_cross_correlation_loss_perfect_correlation_is_zero() -> None:
    val = randn(50, 8, dtype=torch.float64)
    loss = dau.ops.cross_correlation_loss(val, 3 * val + 1, 0.0, 0.0)
    assert abs(loss.item() - 8 * (49 / 50 - 1) ** 2) < 1e-12  # C_ii = (n - 1) / n


def test_cross_correlation_loss_gradcheck(device: str) -> None:
    val = randn(6, 4, dtype=torch.float64, device=device, seed=4).requires_grad_()
    forget = randn(7, 5, dtype=torch.float64, device=device, seed=5).requires_grad_()
    torch.autograd.gradcheck(
        lambda a, b: dau.ops.cross_correlation_loss(a, b, 0.3, 1e-3), (val, forget)
    )


def test_cross_correlation_loss_fewer_than_two_rows(device: str) -> None:
    for bv, bf in [(1, 5), (5, 1), (0, 3)]:
        val = randn(bv, 4, device=device).requires_grad_()
        forget = randn(bf, 4, device=device).requires_grad_()
        loss = dau.ops.cross_correlation_loss(val, forget, 0.5, 1e-5)
        assert loss.item() == 0.0
        assert dau.ops.cross_correlation_loss(val, forget, 0.5, 1e-5,
                                              kernels="reference").item() == 0.0
        grad_val, grad_forget = torch.autograd.grad(loss, (val, forget))
        assert not grad_val.any() and not grad_forget.any()


def test_cross_correlation_loss_constant_column_has_finite_gradient() -> None:
    val = randn(6, 3, dtype=torch.float64).requires_grad_()
    forget = randn(6, 3, dtype=torch.float64)
    forget[:, 1] = 2.0
    forget.requires_grad_()
    loss = dau.ops.cross_correlation_loss(val, forget, 0.2, 1e-3)
    torch.testing.assert_close(loss, reference.cross_correlation_loss(val, forget, 0.2, 1e-3))
    grads = torch.autograd.grad(loss, (val, forget))
    assert all(bool(torch.isfinite(g).all()) for g in grads)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=dtype_id)
def test_cross_correlation_loss_half_precision(dtype: torch.dtype) -> None:
    """float16/bfloat16 inputs are computed in float32 (the loss keeps the input dtype)."""
    val, forget = randn(16, 8, dtype=dtype), randn(16, 8, dtype=dtype, seed=7)
    loss = dau.ops.cross_correlation_loss(val, forget, 0.1, 1e-5)
    assert loss.dtype == dtype
    expected = reference.cross_correlation_loss(val.float(), forget.float(), 0.1, 1e-5)
    torch.testing.assert_close(loss.float(), expected, rtol=1e-2, atol=1e-2)


def test_cross_correlation_loss_opcheck_script_compile() -> None:
    val, forget = randn(6, 4, dtype=torch.float64), randn(5, 4, dtype=torch.float64, seed=1)
    opcheck(torch.ops.dau.cross_correlation_loss.default, (val, forget, 0.1, 1e-5))
    opcheck(torch.ops.dau.cross_correlation_loss.default,
            (val.clone().requires_grad_(), forget.clone().requires_grad_(), 0.1, 1e-5))
    for args in [(val, forget), (randn(6, 40, dtype=torch.float64), randn(7, 30, seed=2,
                                                                             dtype=torch.float64))]:
        opcheck(torch.ops.dau.cross_correlation_loss_forward.default, (*args, 0.1, 1e-5))
        saved = torch.ops.dau.cross_correlation_loss_forward(*args, 0.1, 1e-5)[1:]
        opcheck(torch.ops.dau.cross_correlation_loss_backward.default,
                (torch.tensor(1.5, dtype=torch.float64), *saved, args[0].shape[0],
                 args[1].shape[0], 0.1))

    def f(a: Tensor, b: Tensor) -> Tensor:
        return torch.ops.dau.cross_correlation_loss(a, b, 0.1, 1e-5)

    expected = f(val, forget)
    assert torch.equal(torch.jit.script(f)(val, forget), expected)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(val, forget), expected)
    v, fg = val.clone().requires_grad_(), forget.clone().requires_grad_()
    grads = torch.autograd.grad(compiled(v, fg), (v, fg))
    for got, want in zip(grads, torch.autograd.grad(f(v, fg), (v, fg)), strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize(("rows", "width"), [(6, 4), (5, 40)])  # through M, the Gram matrices
def test_ops_called_directly_have_the_wrappers_gradients(rows: int, width: int) -> None:
    """torch.ops.dau.* differentiate through the dispatcher's autograd kernel, the
    typed wrappers through their own autograd.Function: the same formulas."""
    val, forget = randn(rows, width, dtype=torch.float64), randn(rows + 1, width, seed=1,
                                                                 dtype=torch.float64)
    logits, noisy, labels = sensitivity_case(rows, width, 2, torch.float64, "cpu")
    grad = randn(rows, 3 * width, dtype=torch.float64, seed=2)
    calls: list[tuple[Callable[..., Tensor], Callable[..., Tensor], tuple[Tensor, ...]]] = [
        (lambda a, b: torch.ops.dau.cross_correlation_loss(a, b, 0.2, 1e-5),
         lambda a, b: dau.ops.cross_correlation_loss(a, b, 0.2, 1e-5), (val, forget)),
        (lambda a, b: torch.ops.dau.sensitivity_features(a, b, labels, 0.5, width) * grad,
         lambda a, b: dau.ops.sensitivity_features(a, b, labels, 0.5, width) * grad,
         (logits, noisy)),
    ]
    for direct, wrapped, inputs in calls:
        results = []
        for fn in (direct, wrapped):
            leaves = [t.clone().requires_grad_() for t in inputs]
            out = fn(*leaves).sum()
            results.append((out, *torch.autograd.grad(out, leaves)))
        for a, b in zip(*results, strict=True):
            assert torch.equal(a, b)


def test_typed_wrappers_compile_with_their_gradients() -> None:
    val, forget = randn(8, 6, dtype=torch.float64), randn(8, 6, dtype=torch.float64, seed=1)
    logits, noisy, labels = sensitivity_case(4, 3, 2, torch.float64, "cpu")

    def f(*xs: Tensor) -> Tensor:
        return (dau.ops.cross_correlation_loss(xs[0], xs[1], 0.1, 1e-5)
                + dau.ops.sensitivity_features(xs[2], xs[3], labels, 0.5, 3).square().sum()
                + dau.ops.noisy_replicate(xs[0], 2, 0.5, 7, 0).square().sum())

    leaves = [t.clone().requires_grad_() for t in (val, forget, logits, noisy)]
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    got, want = compiled(*leaves), f(*leaves)
    torch.testing.assert_close(got, want)
    for a, b in zip(torch.autograd.grad(got, leaves), torch.autograd.grad(want, leaves),
                    strict=True):
        torch.testing.assert_close(a, b)


def test_cross_correlation_loss_backward_bad_saved_tensors() -> None:
    val, forget = randn(6, 4, dtype=torch.float64), randn(5, 4, dtype=torch.float64, seed=1)
    grad = torch.tensor(1.0, dtype=torch.float64)
    v, f, stats, a, b = torch.ops.dau.cross_correlation_loss_forward(val, forget, 0.1, 1e-5)[1:]
    backward = torch.ops.dau.cross_correlation_loss_backward
    cases: list[tuple[tuple[Any, ...], str]] = [
        ((grad, v, f, stats[:-1], a, b, 6, 5, 0.1), "stats must be"),
        ((grad, v, f, stats, a.T[:2], b, 6, 5, 0.1), "a must be"),
        ((grad, v, f, stats, a, b, 6, 6, 0.1), r"min\(val_rows, forget_rows\)"),
        ((grad, v, f[:4], stats, a, b, 6, 5, 0.1), "as many rows"),
        ((grad.float(), v, f, stats, a, b, 6, 5, 0.1), "v has dtype"),
        ((torch.ones(2, dtype=torch.float64), v, f, stats, a, b, 6, 5, 0.1), "one value"),
        ((grad, v, f, stats, a, b, 6, 5, float("nan")), "offdiag_weight must be finite"),
    ]
    for args, message in cases:
        with pytest.raises(RuntimeError, match=message):
            backward(*args)


@pytest.mark.parametrize("kernels", ["fused", "reference"])
def test_cross_correlation_loss_bad_inputs(kernels: str) -> None:
    val, forget = torch.randn(4, 3), torch.randn(4, 3)
    cases: list[tuple[tuple[Any, ...], str]] = [
        ((val[0], forget, 0.1, 1e-5), "val_features must be 2-D"),
        ((val, forget.view(4, 3, 1), 0.1, 1e-5), "forget_features must be 2-D"),
        ((val, forget.double(), 0.1, 1e-5), "forget_features has dtype"),
        ((val.long(), forget.long(), 0.1, 1e-5), "dtype"),
        ((val, forget, float("inf"), 1e-5), "offdiag_weight must be finite"),
        ((val, forget, 0.1, -1.0), "eps must be finite and >= 0"),
    ]
    for args, message in cases:
        with pytest.raises(RuntimeError, match=message):
            dau.ops.cross_correlation_loss(*args, kernels=kernels)  # type: ignore[arg-type]


# ---------------------------------------------------------- CUDA vs CPU ---


@pytest.mark.cuda
@CUDA
def test_cuda_sensitivity_features_asserts_on_bad_labels() -> None:
    # A device-side assertion ends the CUDA context, so it runs in a child process.
    code = (
        "import torch, dau.ops\n"
        "lg = torch.randn(256, 10, device='cuda')\n"
        "nz = torch.randn(2560, 10, device='cuda')\n"
        "out = dau.ops.sensitivity_features(lg, nz, torch.full((256,), 10, device='cuda'), 0.1, 10)\n"
        "torch.cuda.synchronize()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=120)
    assert child.returncode != 0
    assert "label out of range" in child.stderr or "device-side assert" in child.stderr
    # this process's device is untouched
    logits, noisy, _ = sensitivity_case(256, 10, 10, torch.float32, "cuda")
    out = dau.ops.sensitivity_features(logits, noisy, torch.zeros(256, dtype=torch.long,
                                                                  device="cuda"), 0.1, 10)
    assert torch.isfinite(out).all()


@CUDA
def test_cuda_matches_cpu_and_reference() -> None:
    x = randn(8, 3, 4, 4)
    cpu = dau.ops.noisy_replicate(x, 3, 0.5, 77, 5)
    cuda = dau.ops.noisy_replicate(x.cuda(), 3, 0.5, 77, 5)
    torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-5, atol=1e-5)
    big = dau.ops.noisy_replicate(torch.zeros(256, 3, 32, 32, device="cuda"), 10, 1.0, 3, 999)
    big_cpu = dau.ops.noisy_replicate(torch.zeros(256, 3, 32, 32), 10, 1.0, 3, 999)
    torch.testing.assert_close(big.cpu(), big_cpu, rtol=1e-5, atol=1e-5)

    logits, noisy, labels = sensitivity_case(256, 10, 10, torch.float32, "cpu")
    args = (logits, noisy, labels, 0.1, 10)
    lg, nz = logits.cuda().requires_grad_(), noisy.cuda().requires_grad_()
    out = dau.ops.sensitivity_features(lg, nz, labels.cuda(), 0.1, 10)
    torch.testing.assert_close(out.cpu(), dau.ops.sensitivity_features(*args))
    grad = randn(*out.shape, seed=5)
    cuda_grads = torch.autograd.grad(out, (lg, nz), grad.cuda())
    lc, nc = logits.clone().requires_grad_(), noisy.clone().requires_grad_()
    ref_out = dau.ops.sensitivity_features(lc, nc, labels, 0.1, 10, kernels="reference")
    for a, b in zip(cuda_grads, torch.autograd.grad(ref_out, (lc, nc), grad), strict=True):
        torch.testing.assert_close(a.cpu(), b)

    for shape in [(256, 256, 512, 512), (200, 180, 16, 24), (7, 9, 5, 3)]:
        bv, bf, dv, df = shape
        val, forget = randn(bv, dv, seed=1), randn(bf, df, seed=2)
        v, f = val.cuda().requires_grad_(), forget.cuda().requires_grad_()
        loss = dau.ops.cross_correlation_loss(v, f, 0.005, 1e-5)
        vr, fr = val.clone().requires_grad_(), forget.clone().requires_grad_()
        expected = dau.ops.cross_correlation_loss(vr, fr, 0.005, 1e-5, kernels="reference")
        torch.testing.assert_close(loss.cpu(), expected, rtol=1e-4, atol=1e-4)
        for a, b in zip(torch.autograd.grad(loss, (v, f)), torch.autograd.grad(expected, (vr, fr)),
                        strict=True):
            torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
@CUDA
def test_cuda_ops_run_on_current_stream() -> None:
    x = randn(64, 3, 8, 8, device="cuda")
    val, forget = randn(64, 32, device="cuda"), randn(64, 32, device="cuda", seed=1)
    expected = (dau.ops.noisy_replicate(x, 2, 0.5, 1, 0),
                dau.ops.cross_correlation_loss(val, forget, 0.1, 1e-5))
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        got = (dau.ops.noisy_replicate(x, 2, 0.5, 1, 0),
               dau.ops.cross_correlation_loss(val, forget, 0.1, 1e-5))
    stream.synchronize()
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)
