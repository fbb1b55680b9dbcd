"""Mixed 4/8-bit weights: from a sensitivity table and a budget to the layers at 4 bits.

The table (:func:`malak_pipe.compress.sensitivity.measure_sensitivity`, with each row's
``bytes_saved``: the firmware weight bytes at 8 bits minus at 4) gives per layer and clip the
val accuracy drop and the output KL of that layer alone at 4 bits. :func:`plan_bits` turns a
:class:`MixedPrecisionConfig` into the saving its budget needs, the candidates (one clip per
layer), and the :mod:`malak_pipe.compress.bit_allocation` solver's choice, returned as the
:class:`WeightBitsConfig` to quantize with. Selection reads val figures only. No torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from malak_pipe.compress.bit_allocation import Candidate, Selection, choose
from malak_pipe.compress.precision import MixedPrecisionConfig, WeightBitsConfig
from malak_pipe.errors import ConfigError

KL_TIE_WEIGHT = 1e-6
"""Weight of the output KL in the val-drop cost: it only breaks ties between equal drops."""


@dataclass(frozen=True)
class BitPlan:
    """The layers at 4 bits, each one's clip, the saving needed and the solver's selection."""

    bits: WeightBitsConfig
    selection: Selection
    need: int
    unit: str  # "bytes" or "params"
    clips: dict[str, str]
    predicted_drop_pp: float  # the sum of the chosen rows' val drops


def layer_rows(table: dict[str, Any], clip: str) -> dict[str, dict[str, Any]]:
    """One row per layer: that of ``clip``, or with "auto" the one with the smaller val drop
    (then the smaller KL; min-max when both are equal)."""
    chosen: dict[str, dict[str, Any]] = {}
    for row in table["layers"]:
        if clip != "auto" and row["clip"] != clip:
            continue
        best = chosen.get(row["layer"])
        key = (row["val_drop_pp"], row["kl"], row["clip"] != "minmax")
        if best is None or key < (best["val_drop_pp"], best["kl"], best["clip"] != "minmax"):
            chosen[row["layer"]] = row
    if not chosen:
        raise ConfigError(f"the sensitivity table has no rows for clip '{clip}'", path="clip")
    return chosen


def _cost(row: dict[str, Any], cost: str) -> float:
    if cost == "kl":
        return float(row["kl"])
    return max(float(row["val_drop_pp"]), 0.0) + KL_TIE_WEIGHT * float(row["kl"])


def required_saving(config: MixedPrecisionConfig, rows: dict[str, dict[str, Any]], **sizes: int | None) -> int:
    """What the layers at 4 bits must save: bytes for flash and weight budgets, params for bits.

    ``sizes``: ``int8_flash_bytes`` (the int8 firmware's measured flash, for the flash budgets)
    and ``target_flash_bytes`` (the target's, for budget "target").
    """
    if config.budget == "average_bits":
        total = sum(row["params"] for row in rows.values())
        return math.ceil((8.0 - config.average_bits) * total / 4.0)
    if config.budget == "weight_bytes":
        return sum(row["weight_bytes_int8"] for row in rows.values()) - config.weight_bytes
    int8_flash = sizes.get("int8_flash_bytes")
    if int8_flash is None:
        raise ConfigError(
            f"budget '{config.budget}' predicts the firmware's flash from the int8 firmware's",
            path="inputs.reference",
            hint="wire reference: <int8 firmware_build node>.firmware, or use budget weight_bytes / average_bits",
        )
    limit = sizes.get("target_flash_bytes") if config.budget == "target" else config.flash_bytes
    return int8_flash - (limit - config.flash_margin_bytes)


def plan_bits(config: MixedPrecisionConfig, table: dict[str, Any], **sizes: int | None) -> BitPlan:
    """The 4-bit layers for ``config``'s budget (see :func:`required_saving` for ``sizes``)."""
    rows = layer_rows(table, config.clip)
    unit = "params" if config.budget == "average_bits" else "bytes"
    amount = "params" if unit == "params" else "bytes_saved"
    candidates = [Candidate(name, int(row[amount]), _cost(row, config.cost)) for name, row in rows.items()]
    need = required_saving(config, rows, **sizes)
    selection = choose(config.solver, candidates, need, config.seed)
    clips = {name: rows[name]["clip"] for name in selection.names}
    bits = WeightBitsConfig(layers=dict.fromkeys(selection.names, 4), clip_overrides=clips)
    predicted = sum(float(rows[name]["val_drop_pp"]) for name in selection.names)
    return BitPlan(bits, selection, need, unit, clips, predicted)


def weight_figures(table: dict[str, Any], four_bit: tuple[str, ...]) -> dict[str, float | int]:
    """Firmware weight bytes of the mixed model and of all-int8, and the mean weight bits."""
    rows = layer_rows(table, "auto")
    int8 = sum(row["weight_bytes_int8"] for row in rows.values())
    mixed = sum(row["weight_bytes_int4" if name in four_bit else "weight_bytes_int8"] for name, row in rows.items())
    params = sum(row["params"] for row in rows.values())
    bits = sum((4 if name in four_bit else 8) * row["params"] for name, row in rows.items())
    return {"weight_bytes": mixed, "weight_bytes_int8": int8, "average_weight_bits": bits / params if params else 8.0}
