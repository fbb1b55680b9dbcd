"""Will a model fit the target's flash? A lower bound from the architecture alone.

Weights must be stored: a model whose conv and linear weights take more flash than the
target has, at the lowest bit-width the run may use, cannot fit whatever training does, so a
search can drop it before training. Biases, requantization constants and code only add to
the real figure (firmware_build's budget check measures it). With structured pruning still
to come the size is not known from the architecture; the bound then assumes every layer
loses ``prune_ratio`` of its inputs and outputs and keeps half of that again as a margin, so
that no candidate that could fit is rejected.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from malak_pipe.errors import BudgetExceeded
from malak_pipe.mcu.configs import McuConfig
from malak_pipe.mcu.target import TargetConfig

PRUNING_MARGIN = 0.5


class FitCheckOptions(McuConfig):
    """``min_weight_bits``: the narrowest weights the run may use (8, or 4 with mixed
    precision); ``prune_ratio``: structured pruning the run applies after training."""

    min_weight_bits: int = Field(default=8, ge=1, le=8)
    prune_ratio: float = Field(default=0.0, ge=0.0, lt=1.0)


def weight_count(module: Any) -> int:
    """Weights of the conv and linear layers of a torch module."""
    from torch import nn

    kinds = (nn.modules.conv._ConvNd, nn.Linear)
    return sum(int(m.weight.numel()) for m in module.modules() if isinstance(m, kinds))


def flash_lower_bound(weights: int, options: FitCheckOptions) -> int:
    bound = weights * options.min_weight_bits / 8
    if options.prune_ratio > 0:
        bound *= (1.0 - options.prune_ratio) ** 2 * PRUNING_MARGIN
    return int(bound)


def check_fits(weights: int, target: TargetConfig, options: FitCheckOptions) -> dict[str, int]:
    """The bound and the budget; BudgetExceeded (recorded as infeasible by a search) when over."""
    bound = flash_lower_bound(weights, options)
    figures = {"weights": weights, "flash_lower_bound_bytes": bound, "flash_budget_bytes": target.flash_bytes}
    if bound > target.flash_bytes:
        raise BudgetExceeded(
            f"the model cannot fit target '{target.name}': its {weights:,} weights need at least {bound:,} B of "
            f"flash at {options.min_weight_bits} bits, the budget is {target.flash_bytes:,} B",
            path="model.width_mult",
            hint="a narrower model (model.width_mult), more pruning, fewer weight bits, or a larger target",
        )
    return figures
