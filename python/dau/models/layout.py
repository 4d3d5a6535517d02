"""Memory layout of a model's convolutions: channels-last on the CPU, except where it is unsafe.

On the CPU, oneDNN's convolutions run faster in channels-last (NHWC) than in the default
layout (see ``benchmarks/bench_layout.py``), so :func:`place_model` puts a CPU model in
channels-last. One kind of convolution is kept in the default layout: a 1×1 convolution with a
stride above 1 and fewer than 16 input channels per group. oneDNN's 1×1 backward-weights
kernels (``jit_1x1``, AVX2 and AVX-512) write past their workspace for NHWC sources with fewer
input channels than their channel block (8 on AVX2, 16 on AVX-512): heap corruption that
crashes the process or corrupts gradients (``tests/models/test_layout.py`` reproduces it with
torch alone). Such a convolution gets its weight in the default layout and its input made
contiguous by a forward pre-hook; the rest of the model stays channels-last.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SAFE_NHWC_MIN_CHANNELS", "default_layout_convs", "place_model"]

#: The widest channel block of oneDNN's f32 1×1 kernels (AVX-512); AVX2's is 8.
SAFE_NHWC_MIN_CHANNELS = 16


def default_layout_convs(model: nn.Module) -> list[str]:
    """Names of the convolutions of ``model`` that must not run channels-last on the CPU."""
    names = []
    for name, module in model.named_modules():
        if (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1)
                and max(module.stride) > 1
                and module.in_channels // module.groups < SAFE_NHWC_MIN_CHANNELS):
            names.append(name)
    return names


def _contiguous_input(module: nn.Module, args: tuple[torch.Tensor]) -> tuple[torch.Tensor]:
    """Forward pre-hook: the convolution's input in the default layout."""
    return (args[0].contiguous(),)


def place_model(model: nn.Module, device: str | torch.device) -> nn.Module:
    """``model`` on ``device``, in the memory layout its convolutions run fastest in there.

    On the CPU the 4-D weights go channels-last, except those of :func:`default_layout_convs`,
    which stay in the default layout with their inputs made contiguous. The numbers are those
    of the default layout up to float rounding; checkpoints are written contiguous either way.
    Calling it again on a placed model changes nothing.
    """
    model = model.to(device)
    if torch.device(device).type != "cpu":
        return model
    model = model.to(memory_format=torch.channels_last)
    for name in default_layout_convs(model):
        conv = model.get_submodule(name)
        assert isinstance(conv, nn.Conv2d)
        conv.weight.data = conv.weight.data.clone(memory_format=torch.contiguous_format)
        if _contiguous_input not in conv._forward_pre_hooks.values():
            conv.register_forward_pre_hook(_contiguous_input)
    return model
