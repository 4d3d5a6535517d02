import pytest
import torch

from dau.errors import ConfigError
from dau.models import create_model, list_models

pytestmark = pytest.mark.cpu_kernels  # make test runs it again on the AVX2 path


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_the_three_architectures():
    assert list_models() == ["resnet18", "resnet50", "vgg16_bn"]


@pytest.mark.parametrize(("classes", "expected"), [(10, 11_173_962), (100, 11_220_132)])
def test_resnet18_parameter_count_matches_the_reference(classes, expected):
    assert n_params(create_model("resnet18", num_classes=classes)) == expected


def test_resnet18_has_the_cifar_stem():
    model = create_model("resnet18", num_classes=10)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "vgg16_bn"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_every_model_returns_logits_and_features(arch, shape):
    model = create_model(arch, num_classes=7, in_channels=shape[0], width=0.125).eval()
    logits, features = model(torch.rand(3, *shape))
    assert logits.shape == (3, 7)
    assert features.shape == (3, model.feature_dim)
    assert torch.allclose(logits, model.fc(features) if arch != "vgg16_bn" else model.classifier(features))


def test_width_multiplier_scales_the_model():
    small = n_params(create_model("resnet18", num_classes=10, width=0.25))
    assert small < n_params(create_model("resnet18", num_classes=10)) / 10


def test_normalisation_happens_inside_the_model():
    model = create_model("resnet18", num_classes=10, in_channels=1, mean=[0.5], std=[0.25], width=0.125)
    x = torch.full((1, 1, 4, 4), 0.75)
    assert torch.allclose(model.normalize(x), torch.ones_like(x))
    assert "normalize.mean" in model.state_dict()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(name="resnet19"), "did you mean 'resnet18'"),
        (dict(name="resnet18", width=0), "--width"),
        (dict(name="resnet18", num_classes=1), "num_classes"),
        (dict(name="resnet18", in_channels=3, mean=[0.5]), "one per input channel"),
    ],
)
def test_bad_model_arguments_are_clear_errors(kwargs, message):
    kwargs = {"num_classes": 10, **kwargs}
    with pytest.raises(ConfigError, match=message):
        create_model(kwargs.pop("name"), **kwargs)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "vgg16_bn"])
def test_defenders_script_with_torchscript(arch):
    from dau.export import script

    model = create_model(arch, num_classes=5, in_channels=3, width=0.125).eval()
    scripted = script(model)
    x = torch.rand(2, 3, 32, 32)
    (logits, features), (s_logits, s_features) = model(x), scripted(x)
    assert torch.allclose(logits, s_logits, atol=1e-5) and torch.allclose(features, s_features, atol=1e-5)


def test_the_attacker_scripts_with_torchscript():
    from dau.export import script
    from dau.models.attacker import create_attacker

    attacker = create_attacker("transformer", num_classes=4).eval()
    rows = torch.randn(6, 12)
    assert torch.allclose(script(attacker)(rows), attacker(rows), atol=1e-5)
