"""Stopping driven by what a run measures (``stop_rule="measured"``), not by step counts.

A run forgets, then repairs, then stops:

* **forgotten**: over the last ``window`` adversarial steps, the defender's accuracy on its
  forget batches (measured as deployed: BatchNorm running statistics) is at most
  ``tolerance`` (class-wise: a retrained model never predicts a removed class), or (random
  forgetting) at most its accuracy on the validation batches plus ``tolerance``: the forget
  samples are classified like data the model never saw, as a retrained model classifies them.
  From then on the adversarial branch is off (β = 0). (The attacker's own accuracy is
  recorded but not a criterion: it is measured on batches drawn again and again from the same
  small validation set, which it learns to recognise, so it stays above chance even when
  forget and validation samples are alike.)
* **repaired**: over the last ``window`` steps, the accuracy on the retain batches (before each
  update, with the training augmentation) is back within ``tolerance`` of the original's,
  measured on ``window`` retain batches before the first step.

The run ends when both hold, or at its ``epochs`` cap; the summary says which, and at what step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MeasuredStop"]


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


@dataclass
class MeasuredStop:
    """The measured stopping rule's running state (see the module docstring)."""

    classwise: bool
    window: int
    tolerance: float
    retain_target: float  # the original's accuracy on augmented retain batches
    forget: deque[float] = field(default_factory=deque)
    val: deque[float] = field(default_factory=deque)
    attacker: deque[float] = field(default_factory=deque)
    retain: deque[float] = field(default_factory=deque)
    forgotten_at: int | None = None
    repaired_at: int | None = None

    def __post_init__(self) -> None:
        for name in ("forget", "val", "attacker", "retain"):
            setattr(self, name, deque(getattr(self, name), maxlen=self.window))

    def observe(self, step: int, record: dict[str, Any]) -> bool:
        """Take one step's record; True when the run should end after this step."""
        if "forget_eval_acc" in record:
            self.forget.append(record["forget_eval_acc"])
            self.val.append(record["val_eval_acc"])
            self.attacker.append(record["attacker_acc"])
        self.retain.append(record["retain_batch_acc"])
        if self.forgotten_at is None and self._forgotten():
            self.forgotten_at = step
        if self.forgotten_at is not None and self.repaired_at is None and self._repaired():
            self.repaired_at = step
        return self.repaired_at is not None

    @property
    def adversarial(self) -> bool:
        """Whether the adversarial branch still runs."""
        return self.forgotten_at is None

    def _forgotten(self) -> bool:
        if len(self.forget) < self.window:
            return False
        if self.classwise:
            return _mean(self.forget) <= self.tolerance
        return _mean(self.forget) <= _mean(self.val) + self.tolerance

    def _repaired(self) -> bool:
        return (len(self.retain) == self.window
                and _mean(self.retain) >= self.retain_target - self.tolerance)

    def state(self) -> dict[str, Any]:
        return {"forget": list(self.forget), "val": list(self.val),
                "attacker": list(self.attacker), "retain": list(self.retain),
                "forgotten_at": self.forgotten_at, "repaired_at": self.repaired_at,
                "retain_target": self.retain_target}

    @classmethod
    def from_state(cls, state: dict[str, Any], *, classwise: bool, window: int,
                   tolerance: float) -> MeasuredStop:
        return cls(classwise=classwise, window=window, tolerance=tolerance, **state)

    def summary(self, step: int) -> dict[str, Any]:
        """What the rule saw: where forgetting and repair were reached (None: not by the cap)
        and the windows' means at the end."""
        means = {k: round(_mean(v), 4) if v else None for k, v in (
            ("forget_eval_acc", self.forget), ("val_eval_acc", self.val),
            ("attacker_acc", self.attacker), ("retain_batch_acc", self.retain))}
        return {"rule": "measured", "forgotten_at": self.forgotten_at,
                "repaired_at": self.repaired_at, "ended_at": step,
                "retain_target": round(self.retain_target, 4), "window_means": means}
