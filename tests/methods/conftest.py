"""The unlearning tests' shared fixture: a small trained original model."""

import pytest
from unlearn_helpers import SYNTH

from dau.config import TrainConfig


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    from dau.training import train

    root = tmp_path_factory.mktemp("runs")
    config = TrainConfig(dataset=SYNTH, width=0.125, epochs=3, batch_size=32, lr=0.05, device="cpu")
    return train(config, runs_dir=root, out=root / "original", progress=False)
