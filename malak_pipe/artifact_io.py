"""Generic artifact types that need no heavy imports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from malak_pipe.artifacts import ArtifactType
from malak_pipe.errors import ArtifactError


def _save_json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"not a readable JSON file: {exc}", path=str(path)) from None


JSON = ArtifactType(name="json", suffix=".json", save=_save_json, load=_load_json)
