"""QuantRecipe: everything needed to rebuild an int8 model from its float architecture.

An int8 PyTorch model cannot be pickled safely (its modules are code), so the artifact stores
the float :class:`~malak_pipe.models.ModelConfig`, this recipe and the int8 ``state_dict``.
Loading rebuilds the float model, resizes it to ``float_shapes`` (a structurally pruned model
has fewer channels than its config says), replays the recipe (fuse, prepare, convert) and
loads the state. The numeric fields (dtypes, schemes, quantization ranges) are also what an
exporter to ONNX QDQ or a firmware code generator needs to reproduce the arithmetic.

Recipe 2 adds the weight bit-width per layer: ``weight_bits`` names the layers whose weights
are 4-bit (symmetric per channel, in [-8, 7], stored in int8 tensors), ``weight_clips`` how
each picked its range in PTQ ("minmax" or "mse", with the search's ``weight_clip_grid`` and
``weight_clip_floor``; absent after QAT). Recipe 1 files load as all-int8.

Nothing here imports torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from malak_pipe.compress.configs import ActivationObserver, QuantBackend
from malak_pipe.compress.precision import WEIGHT_RANGES, WeightClip

RECIPE_VERSION = 2


class QuantRecipe(BaseModel):
    """How an int8 model was made (and how to make its skeleton again).

    ``mode``: "dynamic" (int8 weights, activations quantized at run time, eager
    ``quantize_dynamic``), "static" (post-training, calibrated) or "qat" (both through the
    torch.ao FX graph-mode flow). ``activation_quant_range`` is (0, 127) on x86/fbgemm, whose
    kernels use a reduced 7-bit activation range to avoid overflow in 16-bit accumulation, and
    (0, 255) on qnnpack.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipe_version: Literal[1, 2] = RECIPE_VERSION
    mode: Literal["dynamic", "static", "qat"]
    backend: QuantBackend
    per_channel: bool = True
    activation_observer: ActivationObserver | None = None
    dynamic_layers: tuple[Literal["linear", "lstm", "gru"], ...] = ()
    input_shape: tuple[int, ...] | None = None
    float_shapes: dict[str, tuple[int, ...]] = Field(default_factory=dict)
    weight_dtype: Literal["qint8"] = "qint8"
    weight_quant_range: tuple[int, int] = (-128, 127)
    activation_dtype: Literal["quint8"] = "quint8"
    activation_quant_range: tuple[int, int] = (0, 127)
    weight_bits: dict[str, Literal[4]] = Field(default_factory=dict)
    weight_clips: dict[str, WeightClip] = Field(default_factory=dict)
    weight_clip_grid: int = 64
    weight_clip_floor: float = 0.3

    def layer_weight_range(self, name: str) -> tuple[int, int]:
        """The integer range of layer ``name``'s weights (``weight_quant_range`` unless 4-bit)."""
        return WEIGHT_RANGES[4] if name in self.weight_bits else self.weight_quant_range

    @property
    def weight_scheme(self) -> str:
        """ "per_channel_symmetric" or "per_tensor_symmetric" (the int8 weight quantization)."""
        return "per_channel_symmetric" if self.per_channel else "per_tensor_symmetric"

    @property
    def activation_scheme(self) -> str:
        """Activations are always asymmetric per tensor ("per_tensor_affine")."""
        return "per_tensor_affine"


def activation_range(backend: str) -> tuple[int, int]:
    """The uint8 activation range the backend's kernels expect (reduced on x86/fbgemm)."""
    return (0, 255) if backend == "qnnpack" else (0, 127)
