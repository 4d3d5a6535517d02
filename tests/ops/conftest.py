import pytest
import torch

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=[pytest.mark.cuda, CUDA]),
]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """Every device the op kernels exist for: cpu always, cuda when present."""
    return str(request.param)


@pytest.fixture(scope="session")
def ops_loaded() -> None:
    """The compiled library, loaded (a missing one fails the test, saying how to build it)."""
    import dau.ops

    dau.ops.load()
