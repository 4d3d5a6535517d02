"""The dataset registry: :func:`register_dataset`, :func:`list_datasets`, :func:`load_dataset`.

A loader is registered under a name and called as ``fn(data_dir=..., download=...,
**options)``. Options may always be given in the string form (``"digits:seed=3"``) or as
keyword arguments of :func:`load_dataset`; :func:`int_option` and :func:`bool_option`
validate them inside loaders. The loaders themselves are in :mod:`dau.data.builtin`
(generated data) and :mod:`dau.data.readers` (files on disk); importing :mod:`dau.data`
registers them.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from dau._registry import Registry
from dau.data.types import Dataset
from dau.errors import ConfigError

__all__ = [
    "bool_option",
    "int_option",
    "list_datasets",
    "load_dataset",
    "register_dataset",
    "with_spec",
]

F = TypeVar("F", bound=Callable[..., Dataset])

_REGISTRY: Registry[Callable[..., Dataset]] = Registry(
    "dataset", "--dataset", normalize=lambda name: _normalize_name(name)
)
# Keyword arguments every loader receives; the others are its dataset options.
_COMMON = ("data_dir", "download")
# Aliases accepted in the "name:key=value" string form.
_OPTION_ALIASES = {"classes": "num_classes"}


def register_dataset(name: str) -> Callable[[F], F]:
    """Register a loader under ``name``.

    The loader is called as ``fn(data_dir=..., download=..., **options)``; its other
    keyword-only parameters are the dataset's options.
    """

    def decorator(fn: F) -> F:
        params = inspect.signature(fn).parameters
        missing = [p for p in _COMMON if p not in params]
        if missing:
            raise TypeError(f"dataset loader {fn.__name__} lacks parameters {missing}")
        _REGISTRY.register(name)(fn)
        return fn

    return decorator


def list_datasets() -> list[str]:
    """The registered dataset names, sorted."""
    return _REGISTRY.names()


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool | None = None,
    **options: Any,
) -> Dataset:
    """Load dataset ``name`` (optionally ``"name:key=value,..."``) fully into memory.

    ``data_dir`` is the first place searched for file-backed datasets (see
    :mod:`dau.data.readers` for the search order). ``download``: ``False`` never downloads; ``None`` or
    ``True`` lets torchvision download into ``data_dir``, else ``DAU_DATA``, else the cache,
    when the files are found nowhere. ``options`` are the dataset's options.
    Raises :class:`ConfigError` for an unknown name or option and :class:`DataError` when
    the data cannot be found or read.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"dataset: expected a dataset name such as 'cifar10'; got {name!r}")
    base, _, spec = name.partition(":")
    key = _normalize_name(base)
    loader = _REGISTRY.get(base)
    allowed = [
        p.name for p in inspect.signature(loader).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _COMMON
    ]
    spec = _positional(spec, allowed)
    merged = _parse_options(key, spec, allowed) if spec.strip() else {}
    for opt, value in options.items():
        if opt in merged:
            raise ConfigError(
                f"dataset {key!r}: option {opt!r} given both in the name {name!r} and as an "
                "argument; give it once"
            )
        merged[opt] = value
    for opt in merged:
        if opt not in allowed:
            raise ConfigError(_unknown_option(key, opt, allowed))
    path = Path(os.fspath(data_dir)).expanduser() if data_dir is not None else None
    if download is not None and not isinstance(download, bool):
        raise ConfigError(f"download must be True, False or None; got {download!r}")
    dataset = loader(data_dir=path, download=download, **merged)
    return with_spec(dataset, key, merged)


def with_spec(dataset: Dataset, name: str, options: dict[str, Any]) -> Dataset:
    """``dataset`` with the spec ``name:key=value,...`` (sorted keys) that loads it again."""
    spec = name + (":" if options else "") + ",".join(
        f"{k}={_text(v)}" for k, v in sorted(options.items()))
    return dataclasses.replace(dataset, info=dataclasses.replace(dataset.info, spec=spec))


_PATH_OPTIONS = ("root", "path", "test_path")  # file-system options, recorded absolute


def _positional(spec: str, allowed: list[str]) -> str:
    """``"photos/,size=64"`` → ``"root=/abs/photos,size=64"`` for a loader whose first path
    option is ``root`` (or ``path``); path options become absolute, so the spec a run records
    loads from any directory."""
    items = [item for item in spec.split(",")]
    paths = [p for p in _PATH_OPTIONS if p in allowed]
    if not paths or not spec.strip():
        return spec
    if "=" not in items[0]:
        items[0] = f"{paths[0]}={items[0]}"
    for i, item in enumerate(items):
        key, _, value = item.partition("=")
        if key.strip() in paths and value.strip():
            items[i] = f"{key.strip()}={Path(value.strip()).expanduser().resolve()}"
    return ",".join(items)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _normalize_name(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _unknown_option(dataset: str, opt: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(opt, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    valid = ", ".join(allowed) if allowed else "none"
    return f"dataset {dataset!r}: unknown option {opt!r}{hint} (valid options: {valid})"


def _parse_options(dataset: str, spec: str, allowed: list[str]) -> dict[str, Any]:
    """Parse ``"key=value,key=value"`` (values: int, float, true/false or text)."""
    out: dict[str, Any] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(
                f"dataset {dataset!r}: option {item!r} must be written key=value "
                f"(e.g. '{dataset}:seed=1')"
            )
        key = _OPTION_ALIASES.get(key, key) if key not in allowed else key
        if key not in allowed:
            raise ConfigError(_unknown_option(dataset, key, allowed))
        if key in out:
            raise ConfigError(f"dataset {dataset!r}: option {key!r} given twice")
        out[key] = _parse_value(raw.strip())
    return out


def _parse_value(raw: str) -> Any:
    low = raw.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for conv in (int, float):
        try:
            return conv(raw)
        except ValueError:
            pass
    return raw


def int_option(
    dataset: str, opt: str, value: Any, minimum: int, maximum: int | None = None
) -> int:
    """Option ``opt`` of ``dataset`` as an int in ``[minimum, maximum]``; else ConfigError."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if ok and value >= minimum and (maximum is None or value <= maximum):
        return int(value)
    bound = f"≥ {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    raise ConfigError(
        f"dataset {dataset!r}: option {opt!r} must be an integer {bound}; got {value!r}"
    )


def bool_option(dataset: str, opt: str, value: Any) -> bool:
    """Option ``opt`` of ``dataset``, which must be a bool; else ConfigError."""
    if isinstance(value, bool):
        return value
    raise ConfigError(f"dataset {dataset!r}: option {opt!r} must be true or false; got {value!r}")
