"""The CPU layout policy (``dau.models.layout``): oneDNN's NHWC 1×1 bug, and a sweep that no
registered architecture crashes or computes other numbers in the layout ``place_model`` picks.

Everything that may crash a kernel runs in a subprocess (a crash or a hang fails the test
instead of killing the run), on this machine's own ISA path and, where it has AVX-512, once
more on the AVX2 path (``ONEDNN_MAX_CPU_ISA=AVX2`` and ``ATEN_CPU_CAPABILITY=avx2``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from dau.models import create_model, default_layout_convs, list_models, place_model

HERE = Path(__file__).parent
REPRO = HERE / "onednn_nhwc_1x1_repro.py"
SWEEP = HERE / "layout_sweep.py"

NATIVE = torch.backends.cpu.get_cpu_capability()  # ATen's: "AVX512", "AVX2", "DEFAULT", ...
PATHS = [pytest.param("native", id=f"native-{NATIVE.lower()}"),
         pytest.param("avx2", id="avx2", marks=pytest.mark.skipif(
             NATIVE != "AVX512", reason=f"this CPU's own path is {NATIVE}, not AVX-512: its native "
             "run is the AVX2 (or lower) path already"))]


def isa_env(path: str) -> dict[str, str]:
    env = dict(os.environ)
    if path == "avx2":
        env.update(ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
    return env


def run(args: list[str], path: str, timeout: float) -> tuple[str, str]:
    """(outcome, output) of a script in a subprocess: ok, wrong, crash (SIGxxx) or hang."""
    try:
        done = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                              env=isa_env(path), timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return f"hang (no end in {timeout:.0f} s)", out
    output = done.stdout + done.stderr
    if done.returncode < 0:
        return f"crash ({signal.Signals(-done.returncode).name})", output
    return ("ok" if done.returncode == 0 else "wrong" if done.returncode == 1
            else f"exit {done.returncode}"), output


def repro(path: str, *, layout: str, in_channels: int, stride: int = 2, kernel: int = 1
          ) -> tuple[str, str]:
    return run([str(REPRO), "--in-channels", str(in_channels), "--out-channels",
                str(2 * in_channels), "--stride", str(stride), "--kernel", str(kernel),
                "--layout", layout], path, timeout=40)  # a hang costs this


# --- the torch-only reproducer --------------------------------------------------------------

def test_the_reproducer_shows_onednns_nhwc_1x1_bug():
    """Channels-last 1×1 stride-2 convolutions with fewer input channels than oneDNN's block
    (16 on AVX-512, 8 on AVX2) crash, hang or compute wrong weight gradients with the pinned
    torch. If this starts to pass after a torch upgrade, the bug is fixed there: measure
    again whether ``dau.models.layout`` still needs its exception."""
    cases = [("native", 4)] + ([("native", 8), ("avx2", 4)] if NATIVE == "AVX512" else [])
    if NATIVE not in ("AVX512", "AVX2"):
        pytest.skip(f"oneDNN's jit_1x1 kernels need AVX2 at least; this CPU's path is {NATIVE}")
    for path, channels in cases:
        outcome, output = repro(path, layout="channels_last", in_channels=channels)
        assert outcome != "ok", (
            f"torch {torch.__version__} on the {path} path ({NATIVE}) no longer fails at "
            f"{channels} input channels:\n{output[-2000:]}")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("in_channels", [1, 3, 4, 8, 12])
def test_the_same_convolutions_in_the_default_layout_are_right(path, in_channels):
    outcome, output = repro(path, layout="default", in_channels=in_channels)
    assert outcome == "ok", output[-2000:]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("in_channels", "stride", "kernel"), [
    (16, 2, 1), (20, 2, 1), (24, 2, 1), (32, 2, 1),  # 1×1 stride 2 from 16 channels on
    (4, 1, 1), (8, 1, 1),                            # 1×1 stride 1: no strided workspace
    (4, 2, 3), (8, 2, 3),                            # 3×3 stride 2: another kernel
])
def test_convolutions_the_policy_keeps_channels_last_are_right(path, in_channels, stride, kernel):
    conv = nn.Conv2d(in_channels, 2 * in_channels, kernel, stride=stride)
    assert default_layout_convs(nn.Sequential(conv)) == []
    outcome, output = repro(path, layout="channels_last", in_channels=in_channels, stride=stride,
                            kernel=kernel)
    assert outcome == "ok", output[-2000:]


# --- the policy ------------------------------------------------------------------------------

def test_the_policy_keeps_small_strided_1x1_convolutions_in_the_default_layout():
    model = place_model(create_model("resnet18", num_classes=10, in_channels=1, width=0.125), "cpu")
    assert default_layout_convs(model) == ["layer2.0.shortcut.0"]
    shortcut = model.get_submodule("layer2.0.shortcut.0")
    # a 1×1 weight is "contiguous" in both layouts; oneDNN reads its strides, so they must be
    # the default layout's exactly
    assert shortcut.weight.stride() == (8, 1, 1, 1)
    conv = model.get_submodule("layer1.0.conv1")
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    seen = []
    shortcut.register_forward_hook(lambda mod, args, out: seen.append(args[0].stride()))
    model(torch.rand(3, 1, 28, 28))
    assert seen == [torch.empty(3, 8, 28, 28).stride()]  # its input reached it contiguous
    assert len(place_model(model, "cpu").get_submodule("layer2.0.shortcut.0")._forward_pre_hooks) == 1


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "vgg16_bn"])
@pytest.mark.parametrize("width", [0.25, 1.0])
def test_wider_registered_models_run_channels_last_throughout(arch, width):
    assert default_layout_convs(create_model(arch, num_classes=10, width=width)) == []


def test_the_policy_reads_channels_per_group():
    grouped = nn.Sequential(nn.Conv2d(64, 64, 1, stride=2, groups=8), nn.Conv2d(64, 64, 1, stride=2))
    assert default_layout_convs(grouped) == ["0"]


def test_placed_weights_save_and_load_as_the_default_layout(tmp_path):
    from dau.checkpoint import load_weights, save_model

    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=10, in_channels=1, width=0.125)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    save_model(tmp_path / "m.safetensors", place_model(model, "cpu"))
    fresh = place_model(create_model("resnet18", num_classes=10, in_channels=1, width=0.125), "cpu")
    load_weights(fresh, tmp_path / "m.safetensors")
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in expected.items())
    assert fresh.get_submodule("layer2.0.shortcut.0").weight.stride() == (8, 1, 1, 1)


# --- the sweep -------------------------------------------------------------------------------

SIZES = {1: 28, 3: 32}  # Fashion-MNIST/MNIST and CIFAR/SVHN images


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("width", [0.125, 0.25, 1.0])
@pytest.mark.parametrize("arch", list_models())
def test_sweep_every_architecture_batch_1_to_33(arch, width, in_channels, path):
    """place_model's layout, train and eval mode, forward and backward, batch sizes 1..33: no
    crash, no hang, and the outputs and gradients of the default layout (layout_sweep.py)."""
    outcome, output = run([str(SWEEP), arch, str(width), str(in_channels), str(SIZES[in_channels])],
                          path, timeout=900)
    assert outcome == "ok", f"{arch} width {width}, {in_channels} channels, {path}: {outcome}\n" \
                            f"{output[-3000:]}"
