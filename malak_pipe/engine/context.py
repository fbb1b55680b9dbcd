"""The context a stage runs in: its directory, its loaded inputs, atomic saves, progress."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from malak_pipe.artifacts import get_type
from malak_pipe.engine.atomic import atomic_path
from malak_pipe.errors import MalakError
from malak_pipe.stage import Progress, Stage


class _NullProgress:
    def advance(self, steps: int = 1, **fields: Any) -> None:
        pass


class NodeContext:
    """Implements :class:`malak_pipe.stage.StageContext` for one node."""

    def __init__(
        self,
        node: str,
        stage: type[Stage],
        node_dir: Path,
        input_paths: dict[str, Path],
        input_metrics: dict[str, dict[str, Any]],
        console: Any = None,
    ):
        self.node = node
        self.stage = stage
        self.dir = node_dir
        self._input_paths = input_paths
        self._input_metrics = input_metrics
        self._console = console
        self.saved: dict[str, Path] = {}
        self._loaded: dict[str, Any] = {}

    # -- inputs ---------------------------------------------------------------------
    def has_input(self, input_name: str) -> bool:
        return input_name in self._input_paths

    def input_path(self, input_name: str) -> Path:
        if input_name not in self._input_paths:
            raise MalakError(
                f"input '{input_name}' is not wired",
                path=f"pipeline.{self.node}.inputs.{input_name}",
                hint=f"wire it as {input_name}: <node>.<output>",
            )
        return self._input_paths[input_name]

    def load(self, input_name: str) -> Any:
        if input_name not in self._loaded:
            path = self.input_path(input_name)
            artifact_type = self._type_of_file(input_name, path)
            self._loaded[input_name] = get_type(artifact_type).load(path)
        return self._loaded[input_name]

    def _type_of_file(self, input_name: str, path: Path) -> str:
        accepted = self.stage.accepted_types(input_name)
        if len(accepted) == 1:
            return accepted[0]
        for name in accepted:
            if path.name.startswith(f"{name}."):
                return name
        return accepted[0]

    def input_metrics(self, input_name: str) -> dict[str, Any]:
        return dict(self._input_metrics.get(input_name, {}))

    # -- outputs --------------------------------------------------------------------
    def _final_path(self, output_name: str) -> Path:
        if output_name not in self.stage.outputs:
            raise MalakError(
                f"stage '{self.stage.name}' declares no output '{output_name}'",
                hint=f"declared outputs: {', '.join(self.stage.outputs)}",
            )
        artifact_type = self.stage.outputs[output_name]
        return self.dir / f"{artifact_type}.{output_name}{get_type(artifact_type).suffix}"

    def save(self, output_name: str, obj: Any) -> Path:
        final = self._final_path(output_name)
        artifact_type = get_type(self.stage.outputs[output_name])
        with atomic_path(final) as tmp:
            artifact_type.save(obj, tmp)
        self.saved[output_name] = final
        return final

    @contextlib.contextmanager
    def output_path(self, output_name: str) -> Iterator[Path]:
        final = self._final_path(output_name)
        with atomic_path(final) as tmp:
            yield tmp
        self.saved[output_name] = final

    # -- console --------------------------------------------------------------------
    @contextlib.contextmanager
    def progress(self, total: int | None, description: str) -> Iterator[Progress]:
        if self._console is None:
            yield _NullProgress()
            return
        with self._console.progress(self.node, total, description) as bar:
            yield bar

    def log(self, message: str) -> None:
        if self._console is not None:
            self._console.log(self.node, message)
