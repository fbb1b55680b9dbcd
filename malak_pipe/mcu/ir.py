"""The integer-only graph: what the golden reference runs and the code generator compiles.

Activations are int8 with a per-tensor (scale, zero point), stored channels-last: a feature
map is (H, W, C) and a vector is (C,). Weights are int8 symmetric per output channel, biases
int32, and every layer that rescales carries its fixed-point multipliers and shifts
(:mod:`malak_pipe.mcu.fixedpoint`). The operators (``Layer.op``), their attributes and array
layouts are documented with each operator in :mod:`malak_pipe.mcu.ops`.

A graph is saved as ``graph.json`` (structure, scales, attributes) next to ``graph_params.npz``
(the arrays), so a downstream stage can run the reference without the ONNX file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from malak_pipe.errors import ArtifactError

GRAPH_FILE = "graph.json"
PARAMS_FILE = "graph_params.npz"
FORMAT_VERSION = 1


@dataclass
class QTensor:
    """An int8 activation: channels-last shape, scale and zero point (int8 domain)."""

    name: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def same_params(self, scale: float, zero_point: int) -> bool:
        """Whether this tensor has ``scale`` (to float32 precision) and ``zero_point``."""
        return bool(np.isclose(scale, self.scale, rtol=1e-6, atol=0)) and zero_point == self.zero_point


@dataclass
class Layer:
    """One integer operator. ``attrs`` are JSON values, ``arrays`` numpy arrays."""

    name: str
    op: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""

    def macs(self, graph: IntGraph) -> int:
        """Multiply-accumulates of one inference (pooling and add have none)."""
        from malak_pipe.mcu.ops import REGISTRY  # the operators import this module

        return REGISTRY.int_op(self).macs(graph, self)


@dataclass
class IntGraph:
    """Tensors by name, layers in execution order, the input and output tensor names."""

    tensors: dict[str, QTensor]
    layers: list[Layer]
    input: str
    output: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def input_tensor(self) -> QTensor:
        return self.tensors[self.input]

    @property
    def output_tensor(self) -> QTensor:
        return self.tensors[self.output]

    def total_macs(self) -> int:
        return sum(layer.macs(self) for layer in self.layers)

    def consumers(self, tensor: str) -> list[Layer]:
        return [layer for layer in self.layers if tensor in layer.inputs]

    def save(self, directory: Path) -> None:
        """Write ``graph.json`` and ``graph_params.npz`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        layers = []
        for index, layer in enumerate(self.layers):
            for key, value in layer.arrays.items():
                arrays[f"{index}/{key}"] = value
            layers.append(
                {
                    "name": layer.name,
                    "op": layer.op,
                    "inputs": layer.inputs,
                    "output": layer.output,
                    "attrs": layer.attrs,
                    "arrays": sorted(layer.arrays),
                    "source": layer.source,
                }
            )
        doc = {
            "format": FORMAT_VERSION,
            "input": self.input,
            "output": self.output,
            "meta": self.meta,
            "tensors": [
                {"name": t.name, "shape": list(t.shape), "scale": t.scale, "zero_point": t.zero_point}
                for t in self.tensors.values()
            ],
            "layers": layers,
        }
        (directory / GRAPH_FILE).write_text(json.dumps(doc, indent=1))
        with open(directory / PARAMS_FILE, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, directory: Path) -> IntGraph:
        """Read a graph written by :meth:`save`; :class:`ArtifactError` naming the file if it is not one."""
        path = Path(directory) / GRAPH_FILE
        try:
            doc = json.loads(path.read_text())
            with np.load(Path(directory) / PARAMS_FILE) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(
                f"not a readable integer graph ({type(exc).__name__}: {exc})",
                path=str(path),
                hint="point the input at a c_sources directory written by the codegen stage",
            ) from None
        if doc.get("format") != FORMAT_VERSION:
            raise ArtifactError(f"integer graph format {doc.get('format')} is not {FORMAT_VERSION}", path=str(path))
        tensors = {
            t["name"]: QTensor(t["name"], tuple(t["shape"]), float(t["scale"]), int(t["zero_point"]))
            for t in doc["tensors"]
        }
        layers = [
            Layer(
                name=entry["name"],
                op=entry["op"],
                inputs=list(entry["inputs"]),
                output=entry["output"],
                attrs=entry["attrs"],
                arrays={key: arrays[f"{index}/{key}"] for key in entry["arrays"]},
                source=entry.get("source", ""),
            )
            for index, entry in enumerate(doc["layers"])
        ]
        return cls(tensors=tensors, layers=layers, input=doc["input"], output=doc["output"], meta=doc["meta"])
