"""What a run costs: wall time and the images the model ran forward and backward, per phase.

``setup`` is work done once per model and reusable by later requests (DAU's attacker
pretraining, cached beside the original model); ``request`` is the work of this request
(unlearning, or all of a training run). Counting is a forward hook on the model: every call
adds its batch size to the forward count, and a backward pass through its output adds the
batch size to the backward count. A frozen copy of the model that a method runs (a teacher,
the model an attack runs on) is counted too (:meth:`ComputeMeter.watch`). A leaf: imports
nothing of dau.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = ["PHASES", "ComputeMeter"]

PHASES = ("setup", "request")
_KEYS = ("seconds", "forward_images", "backward_images")


class ComputeMeter:
    """Counts ``model``'s forward and backward images and the wall time of each phase.

    ``state`` (from :meth:`state`) continues the counts of a run that is resumed. Time not
    spent inside :meth:`phase` ``("setup")`` counts as ``request``.
    """

    def __init__(self, model: nn.Module, state: dict[str, dict[str, float]] | None = None) -> None:
        self.counts = {p: {k: 0.0 for k in _KEYS} for p in PHASES}
        for p, values in (state or {}).items():
            if p in self.counts:
                self.counts[p].update({k: float(v) for k, v in values.items() if k in _KEYS})
        self.current = "request"
        self._since = time.perf_counter()
        self._model = model
        self._handle = model.register_forward_hook(self._count)
        self._watched: list[Any] = []
        self._paused = False

    def watch(self, model: nn.Module) -> None:
        """Count ``model``'s passes too (a copy of the model that the method runs)."""
        self._watched.append(model.register_forward_hook(self._count))

    @contextmanager
    def unhooked(self) -> Iterator[None]:
        """Take the counting hook off the model inside (to deep-copy it without the hook)."""
        self._handle.remove()
        try:
            yield
        finally:
            self._handle = self._model.register_forward_hook(self._count)

    @contextmanager
    def uncounted(self) -> Iterator[None]:
        """Count no image inside: work a resumed run repeats to rebuild what its interrupted
        part had built (the cost of the run is what an uninterrupted one counts)."""
        before, self._paused = self._paused, True
        try:
            yield
        finally:
            self._paused = before

    def _count(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if self._paused or not args or not isinstance(args[0], torch.Tensor):
            return
        n = float(args[0].shape[0])
        counts = self.counts[self.current]
        counts["forward_images"] += n
        logits = output[0] if isinstance(output, (tuple, list)) else output
        if isinstance(logits, torch.Tensor) and logits.requires_grad:
            logits.register_hook(lambda grad: self._backward(counts, n))

    @staticmethod
    def _backward(counts: dict[str, float], n: float) -> None:
        counts["backward_images"] += n

    def _tick(self) -> None:
        now = time.perf_counter()
        self.counts[self.current]["seconds"] += now - self._since
        self._since = now

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Count what runs inside as ``name`` (``setup`` or ``request``)."""
        if name not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {name!r}")
        self._tick()
        before, self.current = self.current, name
        try:
            yield
        finally:
            self._tick()
            self.current = before

    def state(self) -> dict[str, dict[str, float]]:
        """The counts so far (JSON-serialisable), with the time up to now."""
        self._tick()
        return {p: dict(v) for p, v in self.counts.items()}

    def close(self) -> dict[str, dict[str, float]]:
        """Stop counting; the final counts."""
        state = self.state()
        self._handle.remove()
        for handle in self._watched:
            handle.remove()
        return state
