"""Deploy artifact types: ``onnx_model``, ``onnx_model_int8`` and ``drift_reference``.

An ONNX artifact is one ``.onnx`` file with its weights embedded. Loading it returns an
:class:`OnnxModel` (the path, which ONNX Runtime sessions want, and the checked
``onnx.ModelProto``). A drift reference is a JSON file (see :mod:`malak_pipe.deploy.drift`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from malak_pipe.artifacts import ArtifactType
from malak_pipe.errors import ArtifactError


@dataclass(frozen=True)
class OnnxModel:
    """A validated ONNX file: ``path`` for ONNX Runtime, ``proto`` for graph inspection."""

    path: Path
    proto: Any = field(repr=False, compare=False)

    @property
    def opset(self) -> int:
        """The default-domain opset the model was written for."""
        return next((o.version for o in self.proto.opset_import if o.domain in ("", "ai.onnx")), 0)

    @property
    def op_types(self) -> list[str]:
        """Operator types of the main graph, in node order."""
        return [node.op_type for node in self.proto.graph.node]

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def load_onnx(path: Path | str) -> OnnxModel:
    """Read and check an ONNX file; :class:`ArtifactError` naming the file when it is not valid ONNX."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ArtifactError("no such ONNX file", path=str(path), hint="check the path of the model")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto, full_check=False)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError...
        raise ArtifactError(
            f"not a valid ONNX model ({type(exc).__name__}: {str(exc).strip()[:300]})",
            path=str(path),
            hint="point the input at a .onnx file written by export_onnx or quantize_onnx",
        ) from None
    if len(proto.graph.node) == 0:
        raise ArtifactError("the ONNX graph has no nodes", path=str(path))
    return OnnxModel(path=path, proto=proto)


def save_onnx(obj: OnnxModel | Any, path: Path) -> None:
    """Write an :class:`OnnxModel` (copies its file) or an ``onnx.ModelProto`` (weights embedded)."""
    if isinstance(obj, OnnxModel):
        shutil.copyfile(obj.path, path)
        return
    import onnx

    if isinstance(obj, onnx.ModelProto):
        onnx.save_model(obj, str(path), save_as_external_data=False)
        return
    raise ArtifactError(f"cannot save a {type(obj).__name__} as an ONNX artifact", path=str(path))


def _save_reference(obj: Any, path: Path) -> None:
    from malak_pipe.deploy.drift import save_reference

    save_reference(obj, path)


def _load_reference(path: Path) -> Any:
    from malak_pipe.deploy.drift import load_reference

    return load_reference(path)


ONNX_MODEL = ArtifactType(name="onnx_model", suffix=".onnx", save=save_onnx, load=load_onnx)
ONNX_MODEL_INT8 = ArtifactType(name="onnx_model_int8", suffix=".onnx", save=save_onnx, load=load_onnx)
DRIFT_REFERENCE = ArtifactType(name="drift_reference", suffix=".json", save=_save_reference, load=_load_reference)
