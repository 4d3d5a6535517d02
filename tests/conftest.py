import pytest

# A small learnable dataset: 4 classes of 8x8 grayscale images.
SYNTH = "synthetic:classes=4,channels=1,size=8,train=240,test=80,seed=0"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """dau's caches (fingerprints of image files, downloads) go to a directory of the test
    session, never to the user's ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    mp.undo()


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


@pytest.fixture
def cli(capsys):
    """Run ``dau ARGS…`` in-process; return (exit code, stdout, stderr).

    The command's logging setup (a handler on the captured stderr) is undone afterwards,
    so that later tests do not log into a closed stream.
    """
    import logging

    from dau.cli import main

    def run(*args):
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        out, err = capsys.readouterr()
        return exc.value.code, out, err

    logger = logging.getLogger("dau")
    saved = logger.handlers[:], logger.level, logger.propagate
    yield run
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
