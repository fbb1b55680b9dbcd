"""QuantRecipe: everything needed to rebuild an int8 model from its float architecture.

An int8 PyTorch model cannot be pickled safely (its modules are code), so the artifact stores
the float :class:`~malak_pipe.models.ModelConfig`, this recipe and the int8 ``state_dict``.
Loading rebuilds the float model, resizes it to ``float_shapes`` (a structurally pruned model
has fewer channels than its config says), replays the recipe (fuse, prepare, convert) and
loads the state. The numeric fields (dtypes, schemes, quantization ranges) are also what an
exporter to ONNX QDQ or a firmware code generator needs to reproduce the arithmetic.

Nothing here imports torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from malak_pipe.compress.configs import ActivationObserver, QuantBackend

RECIPE_VERSION = 1


class QuantRecipe(BaseModel):
    """How an int8 model was made (and how to make its skeleton again).

    ``mode``: "dynamic" (int8 weights, activations quantized at run time, eager
    ``quantize_dynamic``), "static" (post-training, calibrated) or "qat" (both through the
    torch.ao FX graph-mode flow). ``activation_quant_range`` is (0, 127) on x86/fbgemm, whose
    kernels use a reduced 7-bit activation range to avoid overflow in 16-bit accumulation, and
    (0, 255) on qnnpack.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipe_version: Literal[1] = RECIPE_VERSION
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
