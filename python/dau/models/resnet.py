"""ResNets with the CIFAR stem (3×3 conv, no max-pool) returning ``(logits, features)``.

ResNet-18 at width 1 for 10 classes has 11,173,962 trainable parameters, as the
reference (spec §2). ``width`` scales every stage's channel count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dau.models._registry import Normalize, register_model, scaled

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet50"]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """A ResNet whose forward returns ``(logits, features)``.

    ``features`` is the global-average-pooled output of the last stage (post-ReLU).
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        num_blocks: Sequence[int],
        *,
        num_classes: int,
        in_channels: int,
        mean: Sequence[float],
        std: Sequence[float],
        width: float = 1.0,
    ) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        stem = scaled(64, width)
        self.conv1 = nn.Conv2d(in_channels, stem, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        in_planes = stem
        stages = []
        for i, (blocks, planes) in enumerate(zip(num_blocks, (64, 128, 256, 512), strict=True)):
            layers = []
            for j in range(blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(block(in_planes, scaled(planes, width), stride))
                in_planes = scaled(planes, width) * block.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.feature_dim = in_planes
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = F.relu(self.bn1(self.conv1(self.normalize(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        features = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return self.fc(features), features


@register_model("resnet18")
def resnet18(**kwargs: Any) -> ResNet:
    """ResNet-18 (BasicBlock, [2, 2, 2, 2]) with the CIFAR stem."""
    return ResNet(BasicBlock, (2, 2, 2, 2), **kwargs)


@register_model("resnet50")
def resnet50(**kwargs: Any) -> ResNet:
    """ResNet-50 (Bottleneck, [3, 4, 6, 3]) with the CIFAR stem; 2048·width features."""
    return ResNet(Bottleneck, (3, 4, 6, 3), **kwargs)
