"""torch.ops.dau.masked_sgd_: fused kernels vs the reference, vs torch.optim.SGD,
opcheck, TorchScript, torch.compile, bad inputs, and the MaskedSGD optimizer."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

import dau.ops
from dau.errors import KernelUnavailableError
from dau.methods.optim import MaskedSGD, apply_masks_, resolve_masks
from dau.ops import _library

pytestmark = [pytest.mark.usefixtures("ops_loaded"), pytest.mark.cpu_kernels]

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
TOLERANCE = {
    torch.float32: dict(rtol=1e-6, atol=1e-6),
    torch.float64: dict(rtol=1e-12, atol=1e-12),
    torch.float16: dict(rtol=1e-3, atol=1e-3),
    torch.bfloat16: dict(rtol=1e-2, atol=1e-2),
}
CONFIGS: list[dict[str, Any]] = [
    dict(momentum=0.0),
    dict(momentum=0.0, weight_decay=1e-2, maximize=True),
    dict(momentum=0.9, first_step=True),
    dict(momentum=0.9, dampening=0.1, weight_decay=1e-2),
    dict(momentum=0.9, nesterov=True, weight_decay=5e-4, maximize=True),
]
MASK_KINDS = ["none", "bool", "uint8", "same", "some_none"]
LAYOUTS = [
    "contiguous",
    "channels_last",
    "transposed_param",
    "strided_grad",
    "sliced_param",
    "expanded_mask",
    "all_strided",
]
SHAPES = [(6, 5, 3, 3), (4, 1, 2, 7), (3, 2, 1, 1)]


def bits(t: Tensor) -> Tensor:
    """The raw bits of ``t`` (so -0.0 and NaN payloads compare exactly)."""
    view = {8: torch.int64, 4: torch.int32, 2: torch.int16}[t.element_size()]
    return t.detach().contiguous().view(view)


def _strided_like(t: Tensor) -> Tensor:
    """A non-dense view with the values of ``t``."""
    base = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype, device=t.device)
    view = base[..., ::2]
    view.copy_(t)
    return view


def _transposed_like(t: Tensor) -> Tensor:
    """A dense but permuted view with the values of ``t``."""
    dims = list(range(t.dim()))[::-1]
    return t.permute(dims).contiguous().permute(dims)


def make_case(
    layout: str, dtype: torch.dtype, device: str, mask_kind: str, seed: int = 0
) -> dict[str, Any]:
    """Params, grads, buffers and masks of three tensors laid out as ``layout``."""
    gen = torch.Generator().manual_seed(seed)

    def rand(shape: tuple[int, ...]) -> Tensor:
        return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype).to(device)

    params, grads, buffers, masks, bases = [], [], [], [], []
    for i, shape in enumerate(SHAPES):
        p, g, b = rand(shape), rand(shape), rand(shape)
        keep = torch.rand(shape, generator=gen) < 0.6
        m: Tensor | None
        if mask_kind == "none" or (mask_kind == "some_none" and i == 1):
            m = None
        elif mask_kind == "uint8":
            m = keep.to(torch.uint8)
        elif mask_kind == "same":
            m = keep.to(dtype)
        else:
            m = keep
        if m is not None:
            m = m.to(device)
        base = None
        if layout == "channels_last":
            p, g, b = (t.contiguous(memory_format=torch.channels_last) for t in (p, g, b))
            if m is not None:
                m = m.contiguous(memory_format=torch.channels_last)
        elif layout == "transposed_param":
            p = _transposed_like(p)
        elif layout == "strided_grad":
            g = _strided_like(g)
        elif layout == "sliced_param":
            base = rand((shape[0] + 2, *shape[1:]))
            base[1 : 1 + shape[0]] = p
            p = base[1 : 1 + shape[0]]
        elif layout == "expanded_mask" and m is not None:
            m = m[:1].expand(shape)
        elif layout == "all_strided":
            p, g, b = _strided_like(p), _strided_like(g), _transposed_like(b)
            if m is not None:
                m = _strided_like(m)
        params.append(p)
        grads.append(g)
        buffers.append(b)
        masks.append(m)
        bases.append(base)
    return dict(params=params, grads=grads, buffers=buffers, masks=masks, bases=bases)


def clone_case(case: dict[str, Any]) -> dict[str, Any]:
    """A deep copy that keeps every tensor's strides (and slices' bases)."""
    out: dict[str, Any] = dict(grads=case["grads"], masks=case["masks"], bases=[])
    out["params"] = []
    for p, base in zip(case["params"], case["bases"], strict=True):
        if base is None:
            q = torch.empty_strided(p.shape, p.stride(), dtype=p.dtype, device=p.device)
            q.copy_(p)
            out["params"].append(q)
            out["bases"].append(None)
        else:
            new_base = base.clone()
            offset = p.storage_offset() - base.storage_offset()
            out["params"].append(new_base.as_strided(p.shape, p.stride(), offset))
            out["bases"].append(new_base)
    out["buffers"] = []
    for b in case["buffers"]:
        c = torch.empty_strided(b.shape, b.stride(), dtype=b.dtype, device=b.device)
        c.copy_(b)
        out["buffers"].append(c)
    return out


def run(case: dict[str, Any], kernels: str, config: dict[str, Any]) -> None:
    config = dict(config)
    first_step = config.pop("first_step", False)
    masks = case["masks"] if any(m is not None for m in case["masks"]) else None
    dau.ops.masked_sgd_(
        case["params"],
        case["grads"],
        case["buffers"],
        masks,
        lr=0.1,
        first_step=first_step,
        kernels=kernels,  # type: ignore[arg-type]
        **config,
    )


# ----------------------------------------------------- fused vs reference ---


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
def test_matches_reference(device: str, dtype: torch.dtype, layout: str) -> None:
    for mask_kind in MASK_KINDS:
        for config in CONFIGS:
            case = make_case(layout, dtype, device, mask_kind)
            before = clone_case(case)
            fused, expected = clone_case(case), clone_case(case)
            run(fused, "fused", config)
            run(expected, "reference", config)
            where = f"{mask_kind=} {config=}"
            for i, (p, q) in enumerate(zip(fused["params"], expected["params"], strict=True)):
                torch.testing.assert_close(p, q, **TOLERANCE[dtype], msg=where)
                assert p.stride() == before["params"][i].stride()
                m = case["masks"][i]
                if m is not None:
                    frozen = (m == 0).expand(p.shape)
                    assert torch.equal(bits(p)[frozen], bits(before["params"][i])[frozen]), where
                    if config.get("momentum", 0.0) != 0.0:
                        assert bool((fused["buffers"][i][frozen] == 0).all()), where
                if fused["bases"][i] is not None:
                    # Outside its slice the base tensor is untouched.
                    for rows in (slice(0, 1), slice(-1, None)):
                        assert torch.equal(fused["bases"][i][rows], before["bases"][i][rows])
            if config.get("momentum", 0.0) != 0.0:
                for b, c in zip(fused["buffers"], expected["buffers"], strict=True):
                    torch.testing.assert_close(b, c, **TOLERANCE[dtype], msg=where)
            else:
                for b, c in zip(fused["buffers"], before["buffers"], strict=True):
                    assert torch.equal(bits(b), bits(c)), "buffers are unused without momentum"


def test_empty_lists_and_empty_tensors(device: str) -> None:
    dau.ops.masked_sgd_([], [], [], [], lr=0.1, first_step=True)
    p = torch.empty(0, 3, device=device)
    dau.ops.masked_sgd_([p], [torch.empty(0, 3, device=device)], None, None, lr=0.1,
                        first_step=True)


@pytest.mark.parametrize("kernels", ["fused", "reference"])
def test_bit_exact_freeze_of_special_values(kernels: str) -> None:
    """Masked entries keep -0.0, inf and NaN payloads exactly, under decay and momentum."""
    p = torch.tensor([-0.0, float("inf"), float("nan"), 1.5, 2.0, -3.0])
    p_before = p.clone()
    g = torch.full_like(p, 0.25)
    b = torch.full_like(p, 7.0)
    mask = torch.tensor([False, False, False, False, True, True])
    dau.ops.masked_sgd_([p], [g], [b], [mask], lr=0.5, momentum=0.9, weight_decay=0.1,
                        first_step=False, kernels=kernels)  # type: ignore[arg-type]
    assert torch.equal(bits(p[:4]), bits(p_before[:4]))
    assert torch.equal(b[:4], torch.zeros(4))
    assert not torch.equal(p[4:], p_before[4:])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_runs_on_current_stream() -> None:
    case = make_case("contiguous", torch.float32, "cuda", "bool")
    expected = clone_case(case)
    run(expected, "reference", CONFIGS[3])
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fused = clone_case(case)
        run(fused, "fused", CONFIGS[3])
    stream.synchronize()
    for p, q in zip(fused["params"], expected["params"], strict=True):
        torch.testing.assert_close(p, q)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_many_tensors_and_large_tensor() -> None:
    """More tensors and blocks than one launch holds."""
    shapes = [(3,)] * 40 + [(300_000,), (5, 7)] + [(70_000,)] * 30
    gen = torch.Generator(device="cuda").manual_seed(0)
    params = [torch.randn(s, device="cuda", generator=gen) for s in shapes]
    grads = [torch.randn(s, device="cuda", generator=gen) for s in shapes]
    bufs = [torch.randn(s, device="cuda", generator=gen) for s in shapes]
    masks = [torch.rand(s, device="cuda", generator=gen) > 0.3 for s in shapes]
    p2, b2 = [p.clone() for p in params], [b.clone() for b in bufs]
    kwargs = dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=1e-3, first_step=False)
    dau.ops.masked_sgd_(params, grads, bufs, masks, **kwargs)  # type: ignore[arg-type]
    dau.ops.masked_sgd_(p2, grads, b2, masks, kernels="reference", **kwargs)  # type: ignore[arg-type]
    for a, b in zip(params + bufs, p2 + b2, strict=True):
        torch.testing.assert_close(a, b)


@settings(max_examples=40, deadline=None)
@given(
    shapes=st.lists(
        st.lists(st.integers(0, 5), min_size=0, max_size=3).map(tuple), min_size=1, max_size=3
    ),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    dampening=st.sampled_from([0.0, 0.3]),
    weight_decay=st.sampled_from([0.0, 1e-3, 0.5]),
    nesterov=st.booleans(),
    maximize=st.booleans(),
    first_step=st.booleans(),
    density=st.sampled_from([None, 0.0, 0.5, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_property_fused_equals_reference(
    shapes: list[tuple[int, ...]],
    dtype: torch.dtype,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
    density: float | None,
    seed: int,
) -> None:
    nesterov = nesterov and momentum > 0 and dampening == 0
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    grads = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    bufs = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    masks = None if density is None else [torch.rand(s, generator=gen) < density for s in shapes]
    p2, b2 = [p.clone() for p in params], [b.clone() for b in bufs]
    kwargs: dict[str, Any] = dict(
        lr=0.05, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
        nesterov=nesterov, maximize=maximize, first_step=first_step,
    )
    dau.ops.masked_sgd_(params, grads, bufs, masks, **kwargs)
    dau.ops.masked_sgd_(p2, grads, b2, masks, kernels="reference", **kwargs)
    for a, b in zip(params + bufs, p2 + b2, strict=True):
        torch.testing.assert_close(a, b, **TOLERANCE[dtype])


# ------------------------------------------------------ vs torch.optim.SGD ---


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3, stride=2, bias=False),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    ).double()


SGD_CONFIGS: list[dict[str, Any]] = [
    dict(lr=0.05),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=5e-3),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4),
    dict(lr=0.02, momentum=0.5, maximize=True, weight_decay=1e-3),
]


def _train_steps(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    steps: int,
    before_step: Callable[[], None] | None = None,
    after_step: Callable[[], None] | None = None,
) -> None:
    gen = torch.Generator().manual_seed(123)
    for _ in range(steps):
        x = torch.randn(8, 3, 8, 8, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 4, (8,), generator=gen)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        if before_step is not None:
            before_step()
        optimizer.step()
        if after_step is not None:
            after_step()


def _assert_same_params(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("kernels", ["fused", "reference"])
@pytest.mark.parametrize("config", SGD_CONFIGS, ids=lambda c: ",".join(map(str, c.items())))
def test_all_ones_mask_equals_sgd(config: dict[str, Any], kernels: str) -> None:
    model_sgd, model_masked = small_model(), small_model()
    sgd = torch.optim.SGD(model_sgd.parameters(), **config)
    masks = {p: torch.ones_like(p) for p in model_masked.parameters()}
    masked = MaskedSGD(model_masked.parameters(), masks=masks, kernels=kernels, **config)  # type: ignore[arg-type]
    _train_steps(model_sgd, sgd, 4)
    _train_steps(model_masked, masked, 4)
    _assert_same_params(model_sgd, model_masked)
    if config.get("momentum"):
        for p, q in zip(model_sgd.parameters(), model_masked.parameters(), strict=True):
            torch.testing.assert_close(
                sgd.state[p]["momentum_buffer"], masked.state[q]["momentum_buffer"],
                rtol=1e-10, atol=1e-12,
            )


def _random_masks(model: nn.Module, seed: int) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        name: (torch.rand(p.shape, generator=gen) < 0.5).to(p.dtype)
        for name, p in model.named_parameters()
        if p.dim() > 1  # conv and linear weights; BN and biases stay dense
    }


@pytest.mark.parametrize("config", SGD_CONFIGS, ids=lambda c: ",".join(map(str, c.items())))
def test_random_mask_equals_sgd_on_masked_grads(config: dict[str, Any]) -> None:
    """Pruned model (masked entries 0): MaskedSGD == SGD whose grads are masked;
    the pruned entries stay exactly +0.0 and carry no momentum."""
    model_sgd, model_masked = small_model(), small_model()
    by_name = _random_masks(model_sgd, seed=1)
    apply_masks_(model_sgd, by_name)
    apply_masks_(model_masked, by_name)
    sgd_masks = resolve_masks(model_sgd, by_name)

    def mask_grads() -> None:
        for p, m in sgd_masks.items():
            assert p.grad is not None
            p.grad.mul_(m)

    sgd = torch.optim.SGD(model_sgd.parameters(), **config)
    masked_masks = resolve_masks(model_masked, by_name)
    masked = MaskedSGD(model_masked.parameters(), masks=masked_masks, **config)
    _train_steps(model_sgd, sgd, 4, before_step=mask_grads)

    def check_frozen() -> None:
        for p, m in masked_masks.items():
            frozen = m == 0
            assert torch.equal(bits(p)[frozen], torch.zeros_like(bits(p)[frozen]))
            if config.get("momentum"):
                assert bool((masked.state[p]["momentum_buffer"][frozen] == 0).all())

    _train_steps(model_masked, masked, 4, after_step=check_frozen)
    _assert_same_params(model_sgd, model_masked)


def test_random_mask_unpruned_values_are_frozen() -> None:
    """Masked entries that are not zero keep their exact initial bits."""
    config = dict(lr=0.05, momentum=0.9, nesterov=True)
    model_sgd, model_masked = small_model(), small_model()
    by_name = _random_masks(model_sgd, seed=2)
    initial = {n: p.detach().clone() for n, p in model_masked.named_parameters()}
    sgd_masks = resolve_masks(model_sgd, by_name)

    def mask_grads() -> None:
        for p, m in sgd_masks.items():
            assert p.grad is not None
            p.grad.mul_(m)

    sgd = torch.optim.SGD(model_sgd.parameters(), **config)  # type: ignore[arg-type]
    masked = MaskedSGD(model_masked.parameters(), masks=resolve_masks(model_masked, by_name),
                       **config)  # type: ignore[arg-type]
    _train_steps(model_sgd, sgd, 3, before_step=mask_grads)
    _train_steps(model_masked, masked, 3)
    _assert_same_params(model_sgd, model_masked)
    for name, p in model_masked.named_parameters():
        if name in by_name:
            frozen = by_name[name] == 0
            assert torch.equal(bits(p)[frozen], bits(initial[name])[frozen])
            assert not torch.equal(p[~frozen], initial[name][~frozen])


# ------------------------------------------- opcheck, TorchScript, compile ---


def _op_args(seed: int = 0, first_step: bool = False) -> tuple[Any, ...]:
    gen = torch.Generator().manual_seed(seed)
    shapes = [(4, 3), (5,)]
    params = [torch.randn(s, generator=gen) for s in shapes]
    grads = [torch.randn(s, generator=gen) for s in shapes]
    bufs = [torch.randn(s, generator=gen) for s in shapes]
    masks = [torch.rand(shapes[0], generator=gen) > 0.5, None]
    return (params, grads, bufs, masks, 0.1, 0.9, 0.0, 1e-2, True, False, first_step)


def _expected(args: tuple[Any, ...]) -> tuple[list[Tensor], list[Tensor]]:
    params = [p.clone() for p in args[0]]
    bufs = [b.clone() for b in args[2]]
    dau.ops.reference.masked_sgd_(params, args[1], bufs, args[3], *args[4:])
    return params, bufs


def test_opcheck() -> None:
    torch.library.opcheck(torch.ops.dau.masked_sgd_.default, _op_args())
    torch.library.opcheck(torch.ops.dau.masked_sgd_.default, _op_args(1, first_step=True))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_torchscript() -> None:
    @torch.jit.script
    def step(
        params: list[Tensor], grads: list[Tensor], bufs: list[Tensor],
        masks: list[Tensor | None], lr: float,
    ) -> None:
        torch.ops.dau.masked_sgd_(params, grads, bufs, masks, lr, 0.9, 0.0, 1e-2, True, False,
                                  False)

    args = _op_args()
    want_params, want_bufs = _expected(args)
    step(args[0], args[1], args[2], args[3], 0.1)
    for got, want in zip(args[0] + args[2], want_params + want_bufs, strict=True):
        torch.testing.assert_close(got, want)


def _compiled_step(params: list[Tensor], grads: list[Tensor], bufs: list[Tensor],
                   masks: list[Tensor | None]) -> None:
    torch.ops.dau.masked_sgd_(params, grads, bufs, masks, 0.1, 0.9, 0.0, 1e-2, True, False, False)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph(backend: str) -> None:
    torch._dynamo.reset()
    compiled = torch.compile(_compiled_step, fullgraph=True, backend=backend)
    args = _op_args()
    want_params, want_bufs = _expected(args)
    compiled(args[0], args[1], args[2], args[3])
    for got, want in zip(args[0] + args[2], want_params + want_bufs, strict=True):
        torch.testing.assert_close(got, want)


# --------------------------------------------------------------- bad input ---


def _bad_cases() -> dict[str, tuple[Callable[[dict[str, Any]], None], str]]:
    def set_(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
        return lambda a: a.__setitem__(key, value)

    return {
        "fewer grads": (lambda a: a["grads"].pop(), "grads for"),
        "missing buffers": (set_("momentum_buffers", []), "one momentum buffer per param"),
        "extra mask": (lambda a: a["masks"].append(None), "masks for"),
        "grad shape": (lambda a: a["grads"].__setitem__(0, torch.zeros(3, 4)), "has shape"),
        "buffer shape": (
            lambda a: a["momentum_buffers"].__setitem__(1, torch.zeros(6)), "has shape"
        ),
        "mask shape": (lambda a: a["masks"].__setitem__(0, torch.ones(4, 1, dtype=torch.bool)),
                       "has shape"),
        "grad dtype": (lambda a: a["grads"].__setitem__(0, torch.zeros(4, 3, dtype=torch.float64)),
                       "dtype"),
        "mask dtype": (lambda a: a["masks"].__setitem__(0, torch.ones(4, 3, dtype=torch.int32)),
                       "a mask must be bool, uint8"),
        "int params": (lambda a: (a["params"].__setitem__(1, torch.zeros(5, dtype=torch.int64)),
                                  a["grads"].__setitem__(1, torch.zeros(5, dtype=torch.int64)),
                                  a["momentum_buffers"].__setitem__(
                                      1, torch.zeros(5, dtype=torch.int64))),
                       "supported are float32"),
        "expanded param": (lambda a: (a["params"].__setitem__(1, torch.zeros(1).expand(5))),
                           "expanded view"),
        "grad device": (lambda a: a["grads"].__setitem__(0, torch.zeros(4, 3, device="meta")),
                        "is on"),
        "nesterov with dampening": (set_("dampening", 0.5), "Nesterov"),
    }


@pytest.mark.parametrize("kernels", ["fused", "reference"])
@pytest.mark.parametrize("case", list(_bad_cases()))
def test_bad_inputs_raise_and_change_nothing(case: str, kernels: str) -> None:
    mutate, message = _bad_cases()[case]
    params, grads, bufs, masks, *_ = _op_args()
    args: dict[str, Any] = dict(params=params, grads=grads, momentum_buffers=bufs, masks=masks,
                                lr=0.1, momentum=0.9, dampening=0.0, nesterov=True)
    mutate(args)
    snapshot = [t.clone() for t in args["params"] + args["momentum_buffers"]]
    with pytest.raises(RuntimeError, match=message):
        dau.ops.masked_sgd_(
            args.pop("params"), args.pop("grads"), args.pop("momentum_buffers"),
            args.pop("masks"), first_step=False, kernels=kernels, **args,  # type: ignore[arg-type]
        )
    for before, t in zip(snapshot, params + bufs, strict=False):
        if t.dtype == before.dtype and t.shape == before.shape:
            assert torch.equal(t, before)


def test_bad_hyperparameters_and_kernels() -> None:
    params, grads, bufs, masks, *_ = _op_args()
    with pytest.raises(ValueError, match="kernels"):
        dau.ops.masked_sgd_(params, grads, bufs, masks, lr=0.1, first_step=False,
                            kernels="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="learning rate"):
        dau.ops.masked_sgd_(params, grads, bufs, masks, lr=-1.0, first_step=False)


# --------------------------------------------------------- library loading ---


def test_build_info_and_available() -> None:
    assert dau.ops.available()
    info = dau.ops.build_info()
    assert info["available"] is True
    assert info["torch_version"]
    assert "CPU" in info["backends"]
    assert isinstance(info["cuda"]["built"], bool)
    assert info["cuda"]["built"] or info["cuda"]["reason"]


def test_missing_library_says_how_to_build(tmp_path: Any) -> None:
    with pytest.raises(KernelUnavailableError, match=r"build_ops\.py") as excinfo:
        _library._load_from(tmp_path / "libdau_ops.so")
    assert "pip install --no-build-isolation" in str(excinfo.value)


def test_broken_library_is_reported(tmp_path: Any) -> None:
    (tmp_path / "libdau_ops.so").write_bytes(b"not a shared object")
    with pytest.raises(KernelUnavailableError, match="cannot load"):
        _library._load_from(tmp_path / "libdau_ops.so")


def test_cuda_tensors_without_cuda_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_library, "_has_kernel", lambda op, key: False)
    monkeypatch.setattr(
        _library, "_read_build_info", lambda d: {"cuda": {"built": False, "reason": "no nvcc"}}
    )
    with pytest.raises(KernelUnavailableError, match=r"CUDA kernels are not built \(no nvcc\)"):
        _library.require_device(torch.device("cuda"))


# --------------------------------------------------------------- MaskedSGD ---


def test_masked_sgd_state_dict_round_trip() -> None:
    config: dict[str, Any] = dict(lr=0.05, momentum=0.9, weight_decay=1e-3)
    model = small_model()
    by_name = _random_masks(model, seed=3)
    apply_masks_(model, by_name)
    optimizer = MaskedSGD(model.parameters(), masks=resolve_masks(model, by_name), **config)
    _train_steps(model, optimizer, 2)

    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed = small_model(seed=9)
    resumed.load_state_dict(saved["model"])
    resumed_optimizer = MaskedSGD(resumed.parameters(), **config)  # masks come from the state
    resumed_optimizer.load_state_dict(saved["optimizer"])
    assert len(resumed_optimizer.masks) == len(by_name)
    for p, q in zip(model.parameters(), resumed.parameters(), strict=True):
        if p in optimizer.masks:
            assert torch.equal(optimizer.masks[p], resumed_optimizer.masks[q])
        torch.testing.assert_close(
            optimizer.state[p]["momentum_buffer"], resumed_optimizer.state[q]["momentum_buffer"]
        )

    _train_steps(model, optimizer, 2)
    _train_steps(resumed, resumed_optimizer, 2)
    _assert_same_params(model, resumed)
    assert resumed_optimizer.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]


def test_loaded_momentum_buffers_take_the_layout_of_their_params() -> None:
    # Saved contiguous, resumed into a channels-last model (the CPU layout of
    # dau.models.place_model): the buffers follow the params, values unchanged.
    model = small_model()
    optimizer = MaskedSGD(model.parameters(), lr=0.05, momentum=0.9)
    _train_steps(model, optimizer, 1)
    state = copy.deepcopy(optimizer.state_dict())
    resumed = copy.deepcopy(model).to(memory_format=torch.channels_last)
    back = MaskedSGD(resumed.parameters(), lr=0.05, momentum=0.9)
    back.load_state_dict(state)
    assert any(p.dim() == 4 and not p.is_contiguous() for p in resumed.parameters())
    for p, q in zip(model.parameters(), resumed.parameters(), strict=True):
        buffer = back.state[q]["momentum_buffer"]
        assert buffer.stride() == q.stride()
        assert torch.equal(buffer, optimizer.state[p]["momentum_buffer"])


def test_masked_sgd_state_dict_loads_into_torch_sgd_and_back() -> None:
    model = small_model()
    optimizer = MaskedSGD(model.parameters(), lr=0.05, momentum=0.9)
    _train_steps(model, optimizer, 1)
    sgd = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    state = optimizer.state_dict()
    state.pop("masks")
    sgd.load_state_dict(state)
    back = MaskedSGD(model.parameters(), lr=0.05, momentum=0.9)
    back.load_state_dict(sgd.state_dict())
    for p in model.parameters():
        assert torch.equal(back.state[p]["momentum_buffer"], optimizer.state[p]["momentum_buffer"])


def test_masked_sgd_param_groups_and_missing_grads() -> None:
    model = small_model()
    params = list(model.parameters())
    optimizer = MaskedSGD(
        [{"params": params[:3], "lr": 0.1}, {"params": params[3:], "momentum": 0.5}],
        lr=0.01,
    )
    _train_steps(model, optimizer, 1)
    assert "momentum_buffer" in optimizer.state[params[5]]
    assert "momentum_buffer" not in optimizer.state[params[0]]  # its group has no momentum
    before = [p.detach().clone() for p in params]
    params[0].grad = None
    params[4].grad = None
    optimizer.step()
    for i in (0, 4):
        assert torch.equal(params[i], before[i])  # no grad: untouched, like SGD
    for i in (2, 5, 6):
        assert not torch.equal(params[i], before[i])
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)


def test_masked_sgd_arguments() -> None:
    model = small_model()
    params = list(model.parameters())
    with pytest.raises(ValueError, match="Nesterov"):
        MaskedSGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="kernels"):
        MaskedSGD(params, lr=0.1, kernels="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        MaskedSGD(params, lr=0.1, masks={params[0]: torch.ones(2)})
    optimizer = MaskedSGD(params, lr=0.1)
    with pytest.raises(ValueError, match="not a parameter"):
        optimizer.set_mask(torch.zeros(3), torch.ones(3))
    optimizer.set_mask(params[0], torch.zeros_like(params[0]))
    assert optimizer.masks[params[0]].dtype == torch.bool
    optimizer.set_mask(params[0], None)
    assert params[0] not in optimizer.masks
    with pytest.raises(ValueError, match="not a parameter"):
        resolve_masks(model, {"nope.weight": torch.ones(1)})


def test_masked_sgd_reference_kernels_match_fused() -> None:
    models = [small_model(), small_model()]
    by_name = _random_masks(models[0], seed=4)
    optimizers = [
        MaskedSGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3,
                  masks=resolve_masks(m, by_name), kernels=k)  # type: ignore[arg-type]
        for m, k in zip(models, ["fused", "reference"], strict=True)
    ]
    for m, o in zip(models, optimizers, strict=True):
        _train_steps(m, o, 3)
    _assert_same_params(models[0], models[1])


def test_kernel_unavailable_is_not_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    model = small_model()
    optimizer = MaskedSGD(model.parameters(), lr=0.1)

    def broken(device: torch.device, op: str = "masked_sgd_") -> None:
        raise KernelUnavailableError("the dau operator library is missing")

    monkeypatch.setattr(_library, "require_device", broken)
    with pytest.raises(KernelUnavailableError):
        _train_steps(model, optimizer, 1)
    # and the reference path does not need the library
    optimizer.kernels = "reference"
    _train_steps(model, optimizer, 1)


def test_deepcopy_and_pickle_of_optimizer() -> None:
    model = small_model()
    optimizer = MaskedSGD(model.parameters(), lr=0.1, momentum=0.9)
    _train_steps(model, optimizer, 1)
    optimizer.set_mask(next(model.parameters()), torch.ones(6, 3, 3, 3))
    clone = copy.deepcopy(optimizer)
    assert clone.kernels == "fused"
    assert len(clone.masks) == 1
    clone_param = clone.param_groups[0]["params"][0]
    assert clone_param is not next(model.parameters())
    assert clone_param in clone.masks
