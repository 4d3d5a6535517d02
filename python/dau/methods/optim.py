"""The masked optimizer: SGD that never moves pruned weights.

:class:`MaskedSGD` is ``torch.optim.SGD`` (same arguments, same update, same
state dict) plus a mask per parameter: entries whose mask is 0 are never
changed, so a pruned weight stays exactly 0 under weight decay and momentum,
and its momentum buffer stays 0. Each step is one call of the fused
``torch.ops.dau.masked_sgd_`` per parameter group (``kernels="fused"``) or of
its pure-PyTorch reference (``kernels="reference"``).

:func:`apply_masks_` zeroes the pruned entries of a model's parameters, which
is how a mask is first applied before training with :class:`MaskedSGD`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.optimizer import ParamsT

from dau.ops import Kernels, check_kernels, masked_sgd_

__all__ = ["MaskedSGD", "apply_masks_", "resolve_masks"]


def resolve_masks(
    model_or_params: nn.Module | Iterable[Tensor],
    masks: Mapping[Any, Tensor | None],
) -> dict[Tensor, Tensor]:
    """Key ``masks`` by parameter object.

    Keys may be the parameters themselves or, when ``model_or_params`` is a
    module, their names in ``named_parameters()``. ``None`` masks are dropped.
    Raises ``ValueError`` for a key that is not one of the parameters.
    """
    named: dict[str, Tensor] = {}
    params: list[Tensor]
    if isinstance(model_or_params, nn.Module):
        named = dict(model_or_params.named_parameters())
        params = list(named.values())
    else:
        params = list(model_or_params)
    ids = {id(p) for p in params}
    resolved: dict[Tensor, Tensor] = {}
    for key, mask in masks.items():
        param: Tensor
        if isinstance(key, str):
            if key not in named:
                raise ValueError(f"mask for {key!r}, which is not a parameter of the model")
            param = named[key]
        elif isinstance(key, Tensor) and id(key) in ids:
            param = key
        else:
            raise ValueError("a mask is keyed by a tensor that is not one of the parameters")
        if mask is not None:
            resolved[param] = mask
    return resolved


def apply_masks_(
    model_or_params: nn.Module | Iterable[Tensor],
    masks: Mapping[Any, Tensor | None],
) -> None:
    """Set every parameter entry whose mask is 0 to exactly 0.0, in place."""
    with torch.no_grad():
        for param, mask in resolve_masks(model_or_params, masks).items():
            if mask.shape != param.shape:
                raise ValueError(
                    f"mask of shape {list(mask.shape)} for a parameter of shape "
                    f"{list(param.shape)}"
                )
            param.masked_fill_(mask.to(param.device) == 0, 0.0)


def _as_bool_mask(param: Tensor, mask: Tensor) -> Tensor:
    """``mask != 0`` as a bool tensor on the param's device and in its layout
    (so the fused kernel can walk both in one pass)."""
    if mask.shape != param.shape:
        raise ValueError(
            f"mask of shape {list(mask.shape)} for a parameter of shape {list(param.shape)}"
        )
    out = torch.empty_like(param, dtype=torch.bool)
    out.copy_(mask.detach().to(param.device) != 0)
    return out


class MaskedSGD(torch.optim.Optimizer):
    """``torch.optim.SGD`` that never changes entries whose mask is 0.

    Args:
        params, lr, momentum, dampening, weight_decay, nesterov, maximize: as in
            ``torch.optim.SGD`` (param groups included).
        masks: a mask per parameter, keyed by the parameter object (``None`` or
            a missing key = dense). Any dtype; non-zero means "may change".
            Stored as bool tensors on the parameter's device; use
            :func:`resolve_masks` to turn masks keyed by name into this form.
        kernels: ``"fused"`` (compiled kernels, the default) or ``"reference"``.

    ``state_dict()`` holds SGD's state (``momentum_buffer`` per parameter, so
    it round-trips like SGD's) plus ``"masks"``: ``{parameter index: mask}``.
    For an entry with mask 1 a step equals SGD's step on the same gradient; for
    a mask-0 entry the parameter keeps its exact bits and its buffer is 0.
    Within a group, parameters that already have a momentum buffer and those
    that do not yet are stepped by separate calls of the op.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        masks: Mapping[Tensor, Tensor | None] | None = None,
        kernels: Kernels = "fused",
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        check_kernels(kernels)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)
        self.kernels: Kernels = kernels
        self._masks: dict[Tensor, Tensor] = {}
        for param, mask in (masks or {}).items():
            self.set_mask(param, mask)

    # ----------------------------------------------------------- masks ----

    def _all_params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def masks(self) -> Mapping[Tensor, Tensor]:
        """The masks, keyed by parameter (read-only; use :meth:`set_mask`)."""
        return MappingProxyType(self._masks)

    def set_mask(self, param: Tensor, mask: Tensor | None) -> None:
        """Give ``param`` a mask (``None`` removes it: the param becomes dense)."""
        if not any(p is param for p in self._all_params()):
            raise ValueError("set_mask: the tensor is not a parameter of this optimizer")
        if mask is None:
            self._masks.pop(param, None)
        else:
            self._masks[param] = _as_bool_mask(param, mask)

    def _mask_of(self, param: Tensor) -> Tensor | None:
        mask = self._masks.get(param)
        if mask is not None and mask.device != param.device:
            # The model moved (module.to(device)) after the optimizer was made.
            mask = self._masks[param] = _as_bool_mask(param, mask)
        return mask

    # ------------------------------------------------------------ step ----

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimization step (the closure, if given, recomputes the loss)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            momentum = float(group["momentum"])
            # (first_step, params) calls: params without a buffer yet start one.
            calls: dict[bool, list[Tensor]] = {True: [], False: []}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("MaskedSGD does not support sparse gradients")
                first = momentum != 0.0 and "momentum_buffer" not in self.state[p]
                calls[first].append(p)
            for first_step, params in calls.items():
                if params:
                    self._step_params(group, params, first_step)
        return loss

    def _step_params(self, group: dict[str, Any], params: list[Tensor], first_step: bool) -> None:
        momentum = float(group["momentum"])
        grads = [p.grad for p in params]
        masks = [self._mask_of(p) for p in params]
        buffers: list[Tensor] = []
        if momentum != 0.0:
            if first_step:
                buffers = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
            else:
                buffers = [self.state[p]["momentum_buffer"] for p in params]
        masked_sgd_(
            params,
            grads,  # type: ignore[arg-type]
            buffers,
            masks if any(m is not None for m in masks) else None,
            lr=float(group["lr"]),
            momentum=momentum,
            dampening=float(group["dampening"]),
            weight_decay=float(group["weight_decay"]),
            nesterov=bool(group["nesterov"]),
            maximize=bool(group.get("maximize", False)),
            first_step=first_step,
            kernels=self.kernels,
        )
        if momentum != 0.0 and first_step:
            # Only after the op succeeded, so a failed step leaves no state.
            for p, buffer in zip(params, buffers, strict=True):
                self.state[p]["momentum_buffer"] = buffer

    # ------------------------------------------------------ state dict ----

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state["kernels"] = self.kernels
        state["masks"] = self._masks
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        kernels = state.pop("kernels", "fused")
        masks = state.pop("masks", {})
        super().__setstate__(state)
        self.kernels = kernels
        self._masks = dict(masks)

    def state_dict(self) -> dict[str, Any]:
        """SGD's state dict plus ``"masks"``: ``{parameter index: bool mask}``."""
        state = super().state_dict()
        index = {id(p): i for i, p in enumerate(self._all_params())}
        state["masks"] = {index[id(p)]: m for p, m in self._masks.items() if id(p) in index}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load SGD's state and, when present, the masks (replacing the current ones)."""
        state_dict = dict(state_dict)
        masks = state_dict.pop("masks", None)
        super().load_state_dict(state_dict)
        # torch restores the buffers in their saved (contiguous) layout; in the layout of
        # their params (channels-last on the CPU, dau.models.place_model) masked_sgd_ updates
        # them in place instead of through a contiguous copy every step.
        for p in self._all_params():
            buffer = self.state.get(p, {}).get("momentum_buffer")
            if buffer is not None and buffer.stride() != p.stride():
                self.state[p]["momentum_buffer"] = torch.empty_like(p).copy_(buffer)
        if masks is not None:
            params = self._all_params()
            self._masks = {}
            for i, mask in masks.items():
                if not 0 <= int(i) < len(params):
                    raise ValueError(f"state dict has a mask for parameter {i} of {len(params)}")
                self.set_mask(params[int(i)], mask)


def make_sgd(
    model: nn.Module,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    masks: Mapping[str, Tensor] | None = None,
    kernels: str = "fused",
) -> torch.optim.Optimizer:
    """``torch.optim.SGD`` over ``model``, or :class:`MaskedSGD` when it has pruning masks
    (keyed by parameter name)."""
    if not masks:
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                               weight_decay=weight_decay)
    check_kernels(kernels)
    return MaskedSGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                     masks=resolve_masks(model, masks),
                     kernels="reference" if kernels == "reference" else "fused")
