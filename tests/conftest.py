import pytest

# A small learnable dataset: 4 classes of 8x8 grayscale images.
SYNTH = "synthetic:classes=4,channels=1,size=8,train=240,test=80,seed=0"


@pytest.fixture
def synth() -> str:
    return SYNTH


@pytest.fixture
def tiny_config():
    from dau.config import TrainConfig

    def make(**overrides):
        values = dict(dataset=SYNTH, arch="resnet18", width=0.125, epochs=2, batch_size=32,
                      lr=0.05, device="cpu", schedule="multistep")
        values.update(overrides)
        return TrainConfig(**values)

    return make
