import pytest

from dau.cli import main


@pytest.fixture
def cli(capsys):
    """Run ``dau ARGS…`` in-process; return (exit code, stdout, stderr)."""

    def run(*args):
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        out, err = capsys.readouterr()
        return exc.value.code, out, err

    return run
