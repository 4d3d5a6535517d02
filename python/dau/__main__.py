"""``python -m dau ...``: the ``dau`` command line without the installed entry point."""

from dau.cli import main

main()
