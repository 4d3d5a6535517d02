"""Helpers of the unlearning tests (their fixtures are in conftest.py)."""

import json

from dau.config import UnlearnConfig

SYNTH = "synthetic:classes=4,channels=1,size=8,train=240,test=80,seed=0"


def small(**kw):
    values = dict(epochs=1, batch_size=32, attacker_pretrain_iters=5, noise_copies=2, device="cpu")
    values.update(kw)
    return UnlearnConfig(**values)


def unlearn_steps(run):
    """The per-step records of a run's unlearning phase, from its log.jsonl."""
    records = [json.loads(line) for line in (run.path / "log.jsonl").read_text().splitlines()]
    return [r for r in records if r["phase"] == "unlearn"]
