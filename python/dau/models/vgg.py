"""VGG-16 with batch normalisation, returning ``(logits, features)``.

The five max-pools use ``ceil_mode`` so small inputs (8×8 digits, 28×28
Fashion-MNIST) shrink to 1×1 instead of failing; a 32×32 input gives the usual
512-d feature vector after the last pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from dau.models._registry import Normalize, register_model, scaled

__all__ = ["VGG", "vgg16_bn"]

_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG(nn.Module):
    def __init__(
        self,
        config: Sequence[int | str],
        *,
        num_classes: int,
        in_channels: int,
        mean: Sequence[float],
        std: Sequence[float],
        width: float = 1.0,
    ) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        layers: list[nn.Module] = []
        channels = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            else:
                out = scaled(int(item), width)
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
                channels = out
        self.features = nn.Sequential(*layers)
        self.feature_dim = channels
        self.classifier = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.features(self.normalize(x))
        features = torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1)
        return self.classifier(features), features


@register_model("vgg16_bn")
def vgg16_bn(**kwargs: Any) -> VGG:
    """VGG-16 with BatchNorm after every conv."""
    return VGG(_VGG16, **kwargs)
