"""The names of the files in a run directory. A leaf: imports nothing, so the data modules
can name a run's files without importing :mod:`dau.checkpoint` (which re-exports these)."""

__all__ = ["LOG", "MANIFEST", "METRICS", "MODEL", "SPLIT", "STATE"]

MANIFEST = "manifest.json"
MODEL = "model.safetensors"
SPLIT = "split.json"
METRICS = "metrics.json"
LOG = "log.jsonl"
STATE = "state.pt"
