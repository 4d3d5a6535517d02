"""Membership-inference attackers: networks that tell forget from validation samples.

An attacker sees one row per sample, ``[logits ‖ one-hot label ‖ sensitivity]``
(3·C values) and returns two logits (index 1 = member, 0 = non-member).
``transformer`` is the reference's attacker (spec §1.4): 4102·C + 100 866
parameters, i.e. 141 886 for 10 classes and 511 066 for 100.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dau._registry import Registry
from dau.errors import ConfigError

__all__ = ["TransformerAttacker", "create_attacker", "list_attackers", "register_attacker"]

_ATTACKERS: Registry[Callable[..., nn.Module]] = Registry("attacker", "--attacker-arch")
register_attacker = _ATTACKERS.register


def list_attackers() -> list[str]:
    return _ATTACKERS.names()


def create_attacker(name: str, *, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build the attacker ``name`` for a defender with ``num_classes`` classes."""
    factory = _ATTACKERS.get(name)
    if num_classes < 2:
        raise ConfigError(f"num_classes: expected at least 2, got {num_classes}")
    return factory(num_classes=num_classes, **kwargs)


class TransformerAttacker(nn.Module):
    """One token per class holding (logit, one-hot, sensitivity), a small encoder, an MLP head.

    As in the reference: BatchNorm1d over the 3·C inputs, Linear(3→hidden)+GELU per
    token, a post-norm TransformerEncoder (GELU, no positional encoding; the layers
    start as copies of one layer), then Linear(hidden·C→64), ReLU, Linear(64→2).
    """

    def __init__(
        self,
        num_classes: int,
        hidden: int = 64,
        layers: int = 3,
        heads: int = 4,
        feedforward: int = 128,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.norm = nn.BatchNorm1d(3 * num_classes)
        self.embed = nn.Linear(3, hidden)
        layer = nn.TransformerEncoderLayer(
            hidden, heads, feedforward, dropout, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(
            nn.Linear(hidden * num_classes, 64), nn.ReLU(), nn.Linear(64, 2)
        )

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        n = rows.shape[0]
        tokens = self.norm(rows).view(n, 3, self.num_classes).transpose(1, 2)  # N × C × 3
        hidden = self.encoder(nn.functional.gelu(self.embed(tokens)))
        return self.head(hidden.reshape(n, -1))


@register_attacker("transformer")
def transformer(**kwargs: Any) -> TransformerAttacker:
    return TransformerAttacker(**kwargs)
