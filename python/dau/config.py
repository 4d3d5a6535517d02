"""Frozen, validated configuration of every command; resolved copies are saved per run.

A TOML file (``-c FILE``) fills the CLI defaults; flags given on the command line
override it. Keys may be written ``batch_size`` or ``batch-size``. An unknown key is
an error that suggests the nearest valid name.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dau.errors import ConfigError

__all__ = ["TrainConfig", "check_device", "check_keys", "load_toml", "resolve_device"]

SCHEDULES = ("multistep", "cosine", "constant")
KERNELS = ("fused", "reference")
SENSITIVITY = ("fd", "jvp")  # finite differences or forward-mode JVP (dau.numerics)
# How the defender's BatchNorm normalises the forget/validation passes of a DAU step:
# the batch's statistics (the reference) or the running ones (the deployed model).
ADVERSARIAL_BN = ("batch", "running")
ADVERSARIAL_TARGETS = ("both", "forget")
STOP_RULES = ("fixed", "measured")
# multistep: the training recipe's step decay, which only retrain follows (dau.training)
UNLEARN_SCHEDULES = ("constant", "cosine", "multistep")
# How an unlearning run behaves where neither its options nor its dataset's measured
# defaults say otherwise: as the reference (spec §1.2, §8).
REFERENCE_BEHAVIOUR: dict[str, Any] = dict(
    schedule="constant", adversarial_targets="both", adversarial_every=1, adv_weight=0.9,
    stop_rule="fixed")
# The options whose value --reference-compat requires: the reference's, and what it does.
REFERENCE_COMPAT_FIELDS: dict[str, tuple[Any, str]] = {
    "adversarial_bn": ("batch", "normalises with batch statistics"),
    "adversarial_targets": ("both", "trains through the validation passes too"),
    "adversarial_every": (1, "runs the adversarial branch on every step"),
    "stop_rule": ("fixed", "stops at fixed step and epoch counts"),
}
# The baselines' own hyper-parameters (None: the method's default from
# dau.methods.defaults) and the methods each applies to.
METHOD_FIELDS: dict[str, tuple[str, ...]] = {
    "forget_batch_size": ("neggrad+", "scrub"),
    "l1_alpha": ("l1-sparse",),
    "neggrad_alpha": ("neggrad+",),
    "salun_fraction": ("salun",),
    "scrub_msteps": ("scrub",),
    "scrub_temperature": ("scrub",),
    "scrub_ce_weight": ("scrub",),
    "scrub_kl_weight": ("scrub",),
    "ssd_alpha": ("ssd",),
    "ssd_lambda": ("ssd",),
    "bs_bound": ("bs",),
    "amun_eps": ("amun",),
    "amun_steps": ("amun",),
    "amun_rounds": ("amun",),
}
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(device: str) -> str:
    if not _DEVICE.match(device):
        raise ConfigError(f"--device: expected auto, cpu, cuda or cuda:N, got {device!r}")
    return device


def resolve_device(device: str) -> str:
    """Turn ``auto`` into ``cuda`` or ``cpu`` and check that a named GPU exists."""
    import torch

    check_device(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device: {device!r} was asked for, but torch sees no CUDA device")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device: {device!r} does not exist; torch sees "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    return device


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"--{name.replace('_', '-')}: expected {' or '.join(choices)}, "
                          f"got {value!r}")


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not (ok and math.isfinite(value)):
        expected = "a non-negative" if allow_zero else "a positive"
        raise ConfigError(f"--{name.replace('_', '-')}: expected {expected} number, got {value!r}")


def _within(name: str, value: float, low: float, high: float, *, open_low: bool = False) -> None:
    ok = math.isfinite(value) and (low < value if open_low else low <= value) and value <= high
    if not ok:
        raise ConfigError(f"--{name.replace('_', '-')}: expected a number in "
                          f"{'(' if open_low else '['}{low:g}, {high:g}], got {value!r}")


def _count(name: str, value: int, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"--{name.replace('_', '-')}: expected an integer of at least {least}, "
                          f"got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (original model or retrain reference).

    The defaults reproduce the reference pipeline's dense pretraining (spec §4.2):
    SGD, momentum 0.9, weight decay 5e-4, lr 0.1, batch 256, 182 epochs with the
    learning rate divided by 10 at 50 % and 75 % of the epochs (91 and 136).
    """

    dataset: str = "digits"
    data_dir: str | None = None
    arch: str = "resnet18"
    width: float = 1.0
    epochs: int = 182
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "multistep"
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    seed: int = 1
    val_fraction: float = 0.1
    forget: str = "none"
    exclude_forget: bool = False
    metadata: str | None = None  # CSV mapping external IDs to samples, for --forget ids:FILE
    id_column: str | None = None
    augment: bool = True
    device: str = "auto"
    kernels: str = "fused"
    rewind_epoch: int = 8

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"--epochs: expected at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size: expected at least 1, got {self.batch_size}")
        _positive("width", self.width)
        _positive("lr", self.lr)
        _positive("momentum", self.momentum, allow_zero=True)
        _positive("weight_decay", self.weight_decay, allow_zero=True)
        _positive("gamma", self.gamma)
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"--schedule: expected one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )
        if any(not 0 < m < 1 for m in self.milestones) or list(self.milestones) != sorted(
            self.milestones
        ):
            raise ConfigError(
                "--milestones: expected increasing fractions of the epochs in (0, 1), "
                f"got {self.milestones}"
            )
        if self.seed < 0:
            raise ConfigError(f"--seed: expected a non-negative integer, got {self.seed}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"--val-fraction: expected a number in [0, 1), got {self.val_fraction}")
        if self.exclude_forget and self.forget.strip() == "none":
            raise ConfigError(
                "--exclude-forget: needs a forget set; pass --forget SPEC "
                "(e.g. random:10%, class:3) or --class K"
            )
        _choice("kernels", self.kernels, KERNELS)
        if self.rewind_epoch < 0:
            raise ConfigError(f"--rewind-epoch: expected a non-negative epoch, got {self.rewind_epoch}")
        check_device(self.device)

    @property
    def kind(self) -> str:
        return "retrain" if self.exclude_forget else "original"

    def saved_rewind_epoch(self) -> int:
        """The epoch whose weights are kept for pruning with rewinding (0 = initial weights)."""
        return min(self.rewind_epoch, self.epochs)

    def milestone_epochs(self) -> list[int]:
        return [int(m * self.epochs) for m in self.milestones]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["milestones"] = list(self.milestones)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        check_keys(data, [f.name for f in dataclasses.fields(cls)], where="config")
        values = dict(data)
        if "milestones" in values:
            values["milestones"] = tuple(values["milestones"])
        return cls(**values)


def check_keys(data: Mapping[str, Any], allowed: Iterable[str], *, where: str) -> None:
    """Raise ConfigError for the first key of ``data`` not in ``allowed``, naming the nearest."""
    allowed = list(allowed)
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{where}: unknown key {key!r}{hint} (valid keys: {', '.join(sorted(allowed))})"
            )


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into a flat dict with snake_case keys.

    Top-level keys apply to every command; a table named after a command (e.g.
    ``[train]``) applies to that command only and is returned under that name.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"-c/--config: file {str(path)!r} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"-c/--config: cannot read {str(path)!r}: {exc}") from None

    def norm(d: Mapping[str, Any]) -> dict[str, Any]:
        return {
            k.replace("-", "_"): (norm(v) if isinstance(v, Mapping) else v) for k, v in d.items()
        }

    return norm(data)


@dataclass(frozen=True)
class UnlearnConfig:
    """Everything that determines an unlearning run.

    ``lr``/``epochs``/``stop_iter``/``stop_lr`` and the behaviour fields of
    :data:`REFERENCE_BEHAVIOUR` left as None take the method's defaults for the dataset
    and mode (``dau.methods.defaults``), and then the reference's behaviour; the resolved
    values are what the run's manifest records. The DAU constants default to the
    reference's (spec §1.2).
    """

    method: str = "dau"
    lr: float | None = None
    epochs: int | None = None
    # the learning rate over the run: constant (the reference), or cosine from --lr (and
    # from --stop-unlearn-lr after the stop) to 0 at the last step
    schedule: str | None = None
    batch_size: int = 256
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 1
    device: str = "auto"
    kernels: str = "fused"
    # DAU
    stop_iter: int | None = None
    stop_lr: float | None = None
    # when the adversarial branch and the run stop: "fixed" (stop_iter, epochs: the
    # reference) or "measured" (dau.methods.stopping: the forget accuracy at its target,
    # then the retain accuracy back, over stop_window steps; epochs a cap)
    stop_rule: str | None = None
    stop_window: int = 10
    stop_tolerance: float = 0.02
    noise_copies: int = 10
    sigma: float = 1e-3
    sensitivity: str = "fd"
    adversarial_bn: str = "batch"
    # which passes the defender's adversarial and cross-correlation losses train through
    adversarial_targets: str | None = None
    # run the adversarial branch on every N-th step only (1: every step, the reference);
    # the steps between fine-tune on their retain batch alone
    adversarial_every: int | None = None
    bt_weight: float = 1e-3
    adv_weight: float | None = None
    offdiag_weight: float = 5e-3
    std_eps: float = 1e-5
    attacker_arch: str = "transformer"
    attacker_lr: float = 1e-3
    attacker_steps: int = 1
    attacker_pretrain_iters: int = 1000
    reference_compat: bool = False
    # The baselines (METHOD_FIELDS says which methods each applies to; docs/methods/)
    forget_batch_size: int | None = None  # forget batches of neggrad+ and scrub's max steps
    l1_alpha: float | None = None  # l1-sparse: the ℓ1 penalty's weight at the first step
    neggrad_alpha: float | None = None  # neggrad+: α·CE(retain) − (1 − α)·CE(forget)
    salun_fraction: float | None = None  # salun: the fraction of weights the mask frees
    scrub_msteps: int | None = None  # scrub: the epochs that begin with a max pass
    scrub_temperature: float | None = None  # scrub: the distillation temperature
    scrub_ce_weight: float | None = None  # scrub: γ, the retain cross-entropy's weight
    scrub_kl_weight: float | None = None  # scrub: α, the retain KL's weight
    ssd_alpha: float | None = None  # ssd: selection, forget importance > α · full importance
    ssd_lambda: float | None = None  # ssd: dampening, factor min(λ · full / forget, 1)
    bs_bound: float | None = None  # bs: the FGSM step on the input (L∞, pixels in [0, 1])
    amun_eps: float | None = None  # amun: the first L2 budget of the adversarial search
    amun_steps: int | None = None  # amun: PGD steps per budget
    amun_rounds: int | None = None  # amun: budgets tried (each twice the last)

    def __post_init__(self) -> None:
        if self.lr is not None:
            _positive("lr", self.lr)
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"--epochs: expected at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size: expected at least 1, got {self.batch_size}")
        _positive("momentum", self.momentum, allow_zero=True)
        _positive("weight_decay", self.weight_decay, allow_zero=True)
        if self.stop_iter is not None and self.stop_iter < 0:
            raise ConfigError(f"--stop-iter: expected a non-negative step count, got {self.stop_iter}")
        if self.stop_lr is not None:
            _positive("stop_unlearn_lr", self.stop_lr)
        if self.stop_window < 1:
            raise ConfigError(f"--stop-window: expected at least 1 step, got {self.stop_window}")
        if not 0.0 <= self.stop_tolerance < 1.0:
            raise ConfigError("--stop-tolerance: expected an accuracy difference in [0, 1), "
                              f"got {self.stop_tolerance}")
        if self.noise_copies < 1:
            raise ConfigError(f"--noise-copies: expected at least 1, got {self.noise_copies}")
        for name in ("sigma", "attacker_lr"):
            _positive(name, getattr(self, name))
        for name in ("bt_weight", "adv_weight", "offdiag_weight", "std_eps"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name), allow_zero=True)
        if self.attacker_steps < 1 or self.attacker_pretrain_iters < 0:
            raise ConfigError("--attacker-steps must be ≥ 1 and --attacker-iters ≥ 0, got "
                              f"{self.attacker_steps} and {self.attacker_pretrain_iters}")
        if self.adversarial_every is not None and self.adversarial_every < 1:
            raise ConfigError(
                f"--adversarial-every: expected at least 1, got {self.adversarial_every}")
        if self.seed < 0:
            raise ConfigError(f"--seed: expected a non-negative integer, got {self.seed}")
        for name, choices in (("kernels", KERNELS), ("sensitivity", SENSITIVITY),
                              ("adversarial_bn", ADVERSARIAL_BN), ("schedule", UNLEARN_SCHEDULES),
                              ("adversarial_targets", ADVERSARIAL_TARGETS),
                              ("stop_rule", STOP_RULES)):
            if getattr(self, name) is not None:
                _choice(name, getattr(self, name), choices)
        if self.schedule == "multistep" and self.method != "retrain":
            raise ConfigError("--schedule: multistep is the training recipe's step decay, which "
                              f"only --method retrain follows; got --method {self.method}")
        self._check_method_fields()
        if self.reference_compat:  # what the reference does, which these options change
            for name, (reference, does) in REFERENCE_COMPAT_FIELDS.items():
                if getattr(self, name) not in (None, reference):
                    raise ConfigError(
                        f"--{name.replace('_', '-')} {getattr(self, name)} contradicts "
                        f"--reference-compat (the reference {does}); give one of them")
        check_device(self.device)

    def _check_method_fields(self) -> None:
        for name, methods in METHOD_FIELDS.items():
            if getattr(self, name) is not None and self.method not in methods:
                raise ConfigError(f"--{name.replace('_', '-')}: applies to --method "
                                  f"{' and '.join(methods)} only; got --method {self.method}")
        given = {k: v for k, v in self.to_dict().items() if k in METHOD_FIELDS and v is not None}
        for name in ("forget_batch_size", "amun_steps", "amun_rounds"):
            if name in given:
                _count(name, given[name], 1)
        if "scrub_msteps" in given:
            _count("scrub_msteps", given["scrub_msteps"], 0)
        for name in ("l1_alpha", "scrub_ce_weight", "scrub_kl_weight"):
            if name in given:
                _positive(name, given[name], allow_zero=True)
        for name in ("scrub_temperature", "ssd_alpha", "ssd_lambda", "amun_eps"):
            if name in given:
                _positive(name, given[name])
        if "neggrad_alpha" in given:
            _within("neggrad_alpha", given["neggrad_alpha"], 0.0, 1.0)
        for name in ("salun_fraction", "bs_bound"):
            if name in given:
                _within(name, given[name], 0.0, 1.0, open_low=True)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnlearnConfig:
        check_keys(data, [f.name for f in dataclasses.fields(cls)], where="unlearn config")
        return cls(**data)

    def replace(self, **changes: Any) -> UnlearnConfig:
        return dataclasses.replace(self, **changes)

    def filled(self) -> UnlearnConfig:
        """This config with its unset behaviour fields at the reference's values."""
        return self.replace(**{k: v for k, v in REFERENCE_BEHAVIOUR.items()
                               if getattr(self, k) is None})
