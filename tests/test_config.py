import pytest

from dau.config import TrainConfig, UnlearnConfig, load_toml, resolve_device
from dau.errors import ConfigError


def test_defaults_reproduce_the_reference_pretraining():
    config = TrainConfig()
    assert (config.lr, config.momentum, config.weight_decay, config.batch_size) == (0.1, 0.9, 5e-4, 256)
    assert config.milestone_epochs() == [91, 136]


def test_round_trip_through_a_dict():
    config = TrainConfig(dataset="synthetic", epochs=3, forget="class:2", exclude_forget=True)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.kind == "retrain"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(epochs=0), "--epochs"),
        (dict(lr=-1.0), "--lr"),
        (dict(lr=float("nan")), "--lr"),
        (dict(batch_size=0), "--batch-size"),
        (dict(schedule="step"), "--schedule"),
        (dict(val_fraction=1.0), "--val-fraction"),
        (dict(exclude_forget=True), "--exclude-forget"),
        (dict(device="gpu"), "--device"),
        (dict(milestones=(0.8, 0.2)), "--milestones"),
    ],
)
def test_invalid_values_name_the_option(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(adversarial_bn="eval"), "--adversarial-bn: expected batch or running, got 'eval'"),
        (dict(adversarial_bn="running", reference_compat=True), "contradicts --reference-compat"),
        (dict(schedule="step"), "--schedule: expected constant or cosine or multistep, got 'step'"),
        (dict(adversarial_targets="val"), "--adversarial-targets: expected both or forget, got 'val'"),
        (dict(adversarial_targets="forget", reference_compat=True),
         "--adversarial-targets forget contradicts --reference-compat"),
        (dict(adversarial_every=0), "--adversarial-every: expected at least 1, got 0"),
        (dict(adversarial_every=2, reference_compat=True),
         "--adversarial-every 2 contradicts --reference-compat"),
        (dict(sensitivity="ad"), "--sensitivity"),
        (dict(noise_copies=0), "--noise-copies"),
    ],
)
def test_invalid_unlearn_values_name_the_option(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        UnlearnConfig(**kwargs)


def test_unknown_key_suggests_the_nearest_name():
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        TrainConfig.from_dict({"epoch": 3})


def test_toml_keys_are_normalised(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('batch-size = 32\n[train]\nlr = 0.5\n')
    assert load_toml(path) == {"batch_size": 32, "train": {"lr": 0.5}}


def test_broken_toml_is_a_config_error(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("lr = = 3")
    with pytest.raises(ConfigError, match="cannot read"):
        load_toml(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "missing.toml")


def test_device_resolution_on_cpu():
    import torch

    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto") == "cpu"
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda:0")
