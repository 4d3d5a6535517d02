"""Defender architectures: every model maps [0, 1] images to ``(logits, features)``."""

import torch
from torch import nn

from dau.models import resnet, vgg  # noqa: F401  (registers the architectures)
from dau.models._registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "place_model", "register_model"]


def place_model(model: nn.Module, device: str | torch.device) -> nn.Module:
    """``model`` on ``device``, in the memory layout its convolutions run fastest in there.

    On the CPU the 4-D weights go channels-last: mkldnn's convolutions then skip a layout
    conversion per call, 1.25–1.5x faster forward + backward for ResNet-18 width 0.25
    on 28x28 and 32x32 images (batch 128 to 1408, 2 cores). The numbers are those of the
    default layout up to float rounding; checkpoints are written contiguous either way.
    """
    model = model.to(device)
    if torch.device(device).type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model
