"""Any classifier as a defender: head detection, feature capture, weights files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from dau.errors import CheckpointError, ConfigError
from dau.models.adapt import (
    FeatureClassifier,
    as_defender,
    build_classifier,
    find_head,
    load_state_dict,
    state_mismatch,
)


class UserNet(nn.Module):
    """A user's classifier: a head after a non-trivial feature block, logits only."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.proj = nn.Linear(24, 16)  # a Linear that is not the head
        self.classifier = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.relu(self.proj(self.body(x))))


class NoLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(2, 3))


def example(n: int = 3, size: int = 16) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_the_head_is_the_linear_that_returns_the_logits() -> None:
    net = UserNet()
    assert find_head(net, example()) == "classifier"
    defender = as_defender(net, example(), num_classes=5)
    assert isinstance(defender, FeatureClassifier)
    logits, features = defender(example())
    assert torch.equal(logits, net(example()))
    expected = torch.relu(net.proj(net.body(example())))
    assert torch.equal(features, expected)  # the head's input, bit for bit
    assert defender.training  # the probe left the mode as it was


def test_torchvision_resnet18_features_are_the_pooled_trunk() -> None:
    net = build_classifier("torchvision:resnet18", num_classes=4, in_channels=3)
    defender = as_defender(net, example(2, 32), num_classes=4)
    assert defender.feature_layer == "fc"
    defender.eval()
    logits, features = defender(example(2, 32))
    assert features.shape == (2, 512) and logits.shape == (2, 4)
    torch.testing.assert_close(net.fc(features), logits)
    assert all(k.startswith("model.") for k in defender.state_dict())  # no Normalize added


def test_a_model_returning_logits_and_features_is_kept() -> None:
    from dau.models import create_model

    net = create_model("resnet18", num_classes=3, width=0.125)
    assert as_defender(net, example(2, 16), num_classes=3) is net


def test_named_feature_layers_and_normalisation() -> None:
    net = UserNet()
    out = as_defender(net, example(), num_classes=5, feature_layer="body.2")
    _, features = out(example())
    assert features.shape == (3, 6)  # a 4-D output is average-pooled
    normed = as_defender(net, example(), num_classes=5, mean=(0.5,) * 3, std=(0.25,) * 3)
    logits, _ = normed(example())
    torch.testing.assert_close(logits, net((example() - 0.5) / 0.25))


def test_bad_models_get_clear_errors() -> None:
    with pytest.raises(ConfigError, match="feature_layer"):
        as_defender(NoLinear(), example(), num_classes=5)
    with pytest.raises(ConfigError, match="no submodule 'nope'"):
        as_defender(UserNet(), example(), num_classes=5, feature_layer="nope")
    with pytest.raises(ConfigError, match=r"data has 7 classes.*num_classes=7"):
        as_defender(UserNet(5), example(), num_classes=7)
    with pytest.raises(ConfigError, match="forward pass"):
        as_defender(UserNet(), torch.rand(2, 1, 16, 16), num_classes=5)
    with pytest.raises(ConfigError, match=r"nn\.Module"):
        as_defender(lambda x: x, example(), num_classes=5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="did you mean resnet18"):
        build_classifier("torchvision:resnet81", num_classes=3, in_channels=3)
    with pytest.raises(ConfigError, match="3-channel"):
        build_classifier("torchvision:resnet18", num_classes=3, in_channels=1)
    with pytest.raises(ConfigError, match="expected torchvision:NAME"):
        build_classifier("keras:resnet", num_classes=3, in_channels=3)
    with pytest.raises(ConfigError, match="cannot import"):
        build_classifier("import:no_such_module:Net", num_classes=3, in_channels=3)


def test_weights_files(tmp_path: Path) -> None:
    net = UserNet()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    save_file(state, tmp_path / "w.safetensors")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        loaded = load_state_dict(tmp_path / name)
        assert state_mismatch(net.state_dict(), loaded) is None
        assert all(torch.equal(loaded[k], v) for k, v in state.items())
    torch.save(net, tmp_path / "whole.pt")  # a pickled module, not a state dict
    with pytest.raises(CheckpointError, match="weights_only"):
        load_state_dict(tmp_path / "whole.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_state_dict(tmp_path / "missing.pt")
    other = UserNet(num_classes=3).state_dict()
    problem = state_mismatch(other, state)
    assert problem is not None and "shape mismatch" in problem and "classifier.weight" in problem
    del state["proj.bias"]
    assert "missing 1 key(s) (first: proj.bias)" in str(state_mismatch(net.state_dict(), state))


def test_timm_models_by_name() -> None:
    """timm is an optional extra (installed by make): its models take any channel count."""
    net = build_classifier("timm:resnet18", num_classes=3, in_channels=1)
    defender = as_defender(net, torch.rand(2, 1, 16, 16), num_classes=3)
    assert defender.feature_layer == "fc"
    logits, features = defender(torch.rand(2, 1, 16, 16))
    assert logits.shape == (2, 3) and features.shape == (2, 512)
    with pytest.raises(ConfigError, match="timm has no model"):
        build_classifier("timm:resnet_nope", num_classes=3, in_channels=3)
