"""Progress on stderr: a tqdm bar on a terminal; elsewhere (a log file, a CI job, a pipe) one
plain line with the rate and ETA every 30 s, and nothing for work that ends sooner.

A bar on a non-terminal would write every refresh as a carriage-return frame into the log.
Imports nothing of dau.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

__all__ = ["LINE_SECONDS", "progress_bar"]

#: Seconds between two progress lines (and before the first) when stderr is no terminal.
LINE_SECONDS = 30.0


class _Lines(io.TextIOBase):
    """A stream for tqdm that writes each refresh as one line, dropping the blank clears."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


class _LineBar(tqdm):
    """A bar whose postfix updates wait for the next periodic line instead of printing one."""

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        super().set_postfix(ordered_dict, refresh=False, **kwargs)


def progress_bar(iterable: Iterable[Any] | None = None, *, enabled: bool = True,
                 **kwargs: Any) -> Any:
    """``tqdm(iterable, **kwargs)`` on stderr as this module says; ``enabled=False``: silent."""
    stream = sys.stderr
    if not enabled:
        return tqdm(iterable, disable=True, **kwargs)
    if stream.isatty():
        return tqdm(iterable, file=stream, **kwargs)
    return _LineBar(iterable, file=_Lines(stream), ascii=True, ncols=100, delay=LINE_SECONDS,
                    mininterval=LINE_SECONDS, **kwargs)
