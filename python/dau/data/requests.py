"""Deletion requests by content: ``fingerprints:FILE``, ``ids:FILE`` and ``files:PATH``.

A request names data, not positions. It is resolved against the dataset's sample
fingerprints (:mod:`dau.data.fingerprints`) in Rust, and every item ends in one state:

``forgotten``
    it matched samples of the training split; they form the forget set (every copy of a
    duplicated image is forgotten);
``validation``
    it matched only samples that the split holds out for validation: the model never
    trained on them;
``test``
    it matched only test-split samples: the model never trained on them;
``absent``
    its content is not in the dataset at all;
``unresolved``
    it could not be turned into content (an ID missing from the metadata table, a file that
    is not a readable image of the dataset's size).

Nothing is dropped silently: the run's ``split.json`` records the request (its file's SHA-256),
every item with its state and positions, and the CLI warns about every item not forgotten.

Request files
    ``fingerprints:FILE``: 32-hex-digit fingerprints separated by whitespace, commas or
    newlines, ``#`` comments (a ``dau fingerprint`` file, or lines cut from one).
    ``ids:FILE``: one external ID per line (``#`` comments), looked up in the column
    ``id_column`` of a CSV ``metadata`` table whose rows name samples by a ``fingerprint``
    column (preferred: robust to reordering) or an ``index`` column (training-set position).
    ``files:PATH``: a directory (every file in it, recursively, sorted) or a text file listing
    image paths (one per line, relative to the list's directory).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dau import _native
from dau.data.fingerprints import (
    ALGORITHM,
    dataset_fingerprints,
    fingerprint_image_file,
    from_hex,
    read_fingerprint_file,
    to_hex,
)
from dau.data.splits import as_labels, plan_split, request_kind
from dau.errors import RequestError, SplitError

__all__ = ["RequestItem", "plan_forget", "resolve_request"]

log = logging.getLogger(__name__)

@dataclass
class RequestItem:
    """One item of a request and what it resolved to (positions in the full training set,
    or in the test set for ``test``)."""

    item: str
    line: int | None
    fingerprints: list[str] = field(default_factory=list)
    train: list[int] = field(default_factory=list)
    val: list[int] = field(default_factory=list)
    test: list[int] = field(default_factory=list)
    reason: str | None = None

    @property
    def status(self) -> str:
        if self.train:
            return "forgotten"
        if self.val:
            return "validation"
        if self.test:
            return "test"
        return "unresolved" if self.reason else "absent"

    def explain(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return {
            "forgotten": f"forgotten: training positions {self.train}",
            "validation": f"in the validation split (positions {self.val}): never trained on",
            "test": f"in the test split (positions {self.test}): never trained on",
            "absent": "not in the dataset: no sample has this content",
            "unresolved": f"unresolved: {self.reason}",
        }[self.status] + where

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"item": self.item, "status": self.status}
        if self.line is not None:
            out["line"] = self.line
        for key in ("fingerprints", "train", "val", "test"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.reason:
            out["reason"] = self.reason
        return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_lines(path: Path, what: str) -> list[tuple[str, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RequestError(f"{what} {str(path)!r} cannot be read: {exc}") from None
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        value = raw.split("#", 1)[0].strip()
        if value:
            out.append((value, number))
    if not out:
        raise RequestError(f"{what} {str(path)!r} lists nothing (only blank lines or # comments)")
    return out


def _fingerprint_items(source: Path) -> list[RequestItem]:
    fps, lines = read_fingerprint_file(source)
    return [RequestItem(item=h, line=int(n), fingerprints=[h])
            for h, n in zip(to_hex(fps), lines, strict=True)]


def _file_items(source: Path, shape: tuple[int, int, int]) -> list[RequestItem]:
    paths: list[tuple[Path, int | None]]
    if source.is_dir():
        paths = [(p, None) for p in sorted(source.rglob("*")) if p.is_file()]
        if not paths:
            raise RequestError(f"files:{source}: the directory holds no files")
    else:
        paths = [(source.parent / v, n) for v, n in _read_lines(source, "image list")]
    items = []
    for path, line in paths:
        item = RequestItem(item=str(path), line=line)
        try:
            item.fingerprints = to_hex(fingerprint_image_file(path, shape)[None])
        except RequestError as exc:
            item.reason = str(exc)
        items.append(item)
    return items


def _id_items(source: Path, metadata: str | os.PathLike[str] | None, id_column: str | None,
              train_fps: np.ndarray) -> list[RequestItem]:
    if metadata is None or not id_column:
        raise RequestError("ids:FILE needs --metadata CSV and --id-column NAME (the table that "
                           "maps external IDs to samples)")
    table = Path(metadata)
    try:
        with open(table, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RequestError(f"--metadata {str(table)!r} cannot be read as CSV: {exc}") from None
    if id_column not in columns:
        raise RequestError(f"--id-column {id_column!r} is not a column of --metadata "
                           f"{str(table)!r} (columns: {', '.join(columns) or 'none'})")
    by_id: dict[str, list[str]] = {}
    n = len(train_fps)
    train_hex: list[str] | None = None
    for row_number, row in enumerate(rows, 2):
        key = (row.get(id_column) or "").strip()
        if "fingerprint" in columns:
            value = (row.get("fingerprint") or "").strip()
            from_hex([value], what=f"--metadata {table}, line {row_number}: fingerprint")
            fp = value.lower()
        elif "index" in columns:
            raw = (row.get("index") or "").strip()
            if not raw.isdigit() or int(raw) >= n:
                raise RequestError(f"--metadata {str(table)!r}, line {row_number}: index {raw!r} "
                                   f"is not a training-set position in [0, {n})")
            train_hex = train_hex if train_hex is not None else to_hex(train_fps)
            fp = train_hex[int(raw)]
        else:
            raise RequestError(f"--metadata {str(table)!r} needs a 'fingerprint' column "
                               "(preferred) or an 'index' column naming each row's sample")
        by_id.setdefault(key, []).append(fp)
    items = []
    for value, line in _read_lines(source, "ID list"):
        item = RequestItem(item=value, line=line, fingerprints=by_id.get(value, []))
        if not item.fingerprints:
            item.reason = f"ID {value!r} is not in column {id_column!r} of {table}"
        items.append(item)
    return items


def resolve_request(
    spec: str,
    dataset: Any,
    *,
    val: np.ndarray,
    metadata: str | os.PathLike[str] | None = None,
    id_column: str | None = None,
) -> tuple[list[RequestItem], dict[str, Any]]:
    """Resolve a request spec against ``dataset``; ``val`` are the validation positions.

    Returns the items (with their positions) and the request's provenance (kind, source,
    SHA-256 of the request and metadata files). Raises :class:`RequestError` for a request
    that cannot be read.
    """
    kind = request_kind(spec)
    if kind is None:
        raise SplitError(f"forget spec {spec!r} is not a request (fingerprints:, ids:, files:)")
    text = spec.split(":", 1)[1].strip()
    if not text:
        raise RequestError(f"forget spec {spec!r}: expected a file path (fingerprints:request.txt, "
                           "ids:users.txt, files:images/), got ''")
    source = Path(text)
    if not source.exists():
        raise RequestError(f"--forget {spec}: {str(source)!r} does not exist")
    fps = dataset_fingerprints(dataset)
    info = dataset.info
    if kind == "fingerprints":
        items = _fingerprint_items(source)
    elif kind == "files":
        items = _file_items(source, (info.channels, info.height, info.width))
    else:
        items = _id_items(source, metadata, id_column, fps.train)
    provenance: dict[str, Any] = {"spec": spec, "kind": kind, "source": str(source.resolve()),
                                  "fingerprint_algorithm": ALGORITHM}
    if source.is_file():
        provenance["source_sha256"] = _sha256(source)
    if kind == "ids":
        provenance.update(metadata=str(Path(str(metadata)).resolve()), id_column=id_column,
                          metadata_sha256=_sha256(Path(str(metadata))))
    owners = [i for i, item in enumerate(items) for _ in item.fingerprints]
    request = from_hex([h for item in items for h in item.fingerprints])
    is_val = np.zeros(len(fps.train), dtype=bool)
    is_val[val] = True
    for part, data_fps in (("train", fps.train), ("test", fps.test)):
        hit_items, positions = _native.resolve_fingerprints(data_fps, request)
        for k, p in zip(hit_items.tolist(), positions.tolist(), strict=True):
            item = items[owners[k]]
            target = item.test if part == "test" else item.val if is_val[p] else item.train
            if p not in target:
                target.append(p)
    return items, provenance


def plan_forget(
    dataset: Any,
    forget: str,
    seed: int,
    val_fraction: float,
    *,
    metadata: str | os.PathLike[str] | None = None,
    id_column: str | None = None,
) -> tuple[Any, dict[str, Any] | None]:
    """Plan the split of ``dataset`` for ``forget``: any spec of :func:`dau.data.splits.plan_split`
    or a request. Returns the plan and, for a request, its record for the manifest (provenance,
    a summary and every item's resolution). Unforgotten items are logged as warnings."""
    labels, num_classes = dataset.train.labels, dataset.info.num_classes
    if request_kind(forget) is None:
        if metadata is not None or id_column is not None:
            raise RequestError("--metadata/--id-column only apply to --forget ids:FILE")
        return plan_split(labels, num_classes, forget, seed, val_fraction), None
    base = plan_split(labels, num_classes, "none", seed, val_fraction)
    items, provenance = resolve_request(forget, dataset, val=base.val, metadata=metadata,
                                        id_column=id_column)
    summary = {s: 0 for s in ("forgotten", "validation", "test", "absent", "unresolved")}
    for item in items:
        summary[item.status] += 1
    positions = np.array(sorted({p for item in items for p in item.train}), dtype=np.int64)
    if positions.size == 0:
        counts = ", ".join(f"{v} {k}" for k, v in summary.items() if v)
        raise RequestError(f"--forget {forget}: none of its {len(items)} items matched the "
                           f"training split ({counts}); the model never trained on any of them, "
                           "nothing to forget")
    plan, _ = _native.plan_split_request(as_labels(labels), num_classes, forget, seed, positions,
                                         val_fraction)
    not_forgotten = [item for item in items if item.status != "forgotten"]
    for item in not_forgotten[:20]:
        log.warning("request item %s: %s", item.item, item.explain())
    if len(not_forgotten) > 20:
        log.warning("... and %d more request items not forgotten (see split.json)",
                    len(not_forgotten) - 20)
    log.info("request %s: %d items, %d forgotten (%d samples), %d never trained on, "
             "%d absent, %d unresolved", forget, len(items), summary["forgotten"],
             len(plan.forget), summary["validation"] + summary["test"], summary["absent"],
             summary["unresolved"])
    record = {**provenance, "items": len(items),
              "summary": {**summary, "samples_forgotten": len(plan.forget)},
              "resolution": [item.to_dict() for item in items]}
    return plan, record
