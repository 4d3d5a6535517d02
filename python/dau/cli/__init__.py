"""The ``dau`` command line.

Exit codes: 0 success; 1 a ``DauError`` (bad input, missing data, mismatched runs,
training failure), printed as one line (``--debug`` shows the traceback); 2 a usage
error (unknown option, bad value type); 130 interrupted; 128 + N killed by signal N (a crash
in native code: the run is marked failed, see :mod:`dau.supervisor`).
"""

from __future__ import annotations

import logging
import sys

import click

from dau import __version__
from dau.errors import DauError

__all__ = ["cli", "main"]


def configure_logging(quiet: bool, verbose: int) -> None:
    """Only the CLI configures logging: human text to stderr."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if verbose == 0 else
                                           "%(asctime)s %(name)s %(levelname)s: %(message)s"))
    root = logging.getLogger("dau")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="dau")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.option("--threads", type=click.IntRange(min=1), default=None, envvar="DAU_THREADS",
              help="CPU threads of torch's operators (default: torch's, one per core, or "
              "OMP_NUM_THREADS). Give each of several dau commands sharing a machine its part "
              "of the cores: more threads than cores make them wait on one another.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, threads: int | None) -> None:
    """Make an image classifier forget chosen training data, and prove how well it forgot.

    \b
    dau train --dataset fashion-mnist --width 0.25 --epochs 20
    dau train --dataset fashion-mnist --width 0.25 --epochs 20 --forget random:10% --exclude-forget
    dau eval runs/<original> --reference runs/<retrain>
    dau --threads 1 unlearn --dataset fashion-mnist --class 3   # one core of a shared CPU
    """
    from dau.allocator import tune

    tune()  # large host allocations from the heap, kept for reuse (dau.allocator)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register() -> None:
    from dau.cli import eval as eval_cmd
    from dau.cli import export, fingerprint, import_, info, plot, prune, split, train, unlearn

    cli.add_command(train.train)
    cli.add_command(prune.prune)
    cli.add_command(unlearn.unlearn)
    cli.add_command(import_.import_)
    cli.add_command(eval_cmd.eval_)
    cli.add_command(info.info)
    cli.add_command(split.split)
    cli.add_command(fingerprint.fingerprint)
    cli.add_command(export.export)
    cli.add_command(plot.plot)


_register()


def main(argv: list[str] | None = None) -> None:
    """The ``dau`` command. Without ``argv`` (the installed command, ``python -m dau``) the work
    runs in a supervised child process (:mod:`dau.supervisor`); with it, in this process."""
    from dau.supervisor import should_supervise, supervise

    if argv is None and should_supervise():
        sys.exit(supervise(sys.argv[1:]))
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="dau", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DauError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    sys.exit(0)
