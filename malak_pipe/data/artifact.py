"""The ``dataset`` artifact type: a small JSON that re-materializes the dataset on load.

The file holds the DataConfig, the fingerprint, num_classes, input_shape and split sizes.
Loading rebuilds the dataset from its source (memoized) and refuses it when the fingerprint
differs, i.e. when the data on disk changed since the artifact was written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from malak_pipe.artifacts import ArtifactType
from malak_pipe.data.config import DataConfig
from malak_pipe.data.dataset import Dataset
from malak_pipe.data.load import load_dataset
from malak_pipe.errors import ArtifactError

ARTIFACT_FORMAT = 1


def describe(dataset: Dataset) -> dict[str, Any]:
    """The JSON-able description written to disk."""
    return {
        "format": ARTIFACT_FORMAT,
        "config": dataset.config.model_dump(),
        "fingerprint": dataset.fingerprint,
        "num_classes": dataset.num_classes,
        "input_shape": list(dataset.input_shape),
        "class_names": list(dataset.class_names),
        "mean": list(dataset.mean),
        "std": list(dataset.std),
        "sizes": dataset.sizes(),
    }


def save_dataset(dataset: Dataset, path: Path) -> None:
    """Write the dataset's description as JSON at ``path``."""
    path.write_text(json.dumps(describe(dataset), indent=2, sort_keys=True))


def load_dataset_artifact(path: Path) -> Dataset:
    """Re-materialize the dataset described at ``path``; ArtifactError when its data changed."""
    try:
        description = json.loads(Path(path).read_text())
        config = DataConfig(**description["config"])
        fingerprint = description["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
        raise ArtifactError(
            f"not a dataset artifact ({type(exc).__name__}: {str(exc)[:200]})",
            path=str(path),
            hint="point the input at the output of a data stage",
        ) from None
    dataset = load_dataset(config)
    if dataset.fingerprint != fingerprint:
        raise ArtifactError(
            f"the {config.name} data changed since this artifact was written "
            f"(fingerprint {fingerprint[:12]} then, {dataset.fingerprint[:12]} now)",
            path=str(path),
            hint="re-run the data stage (and everything downstream) on the current data",
        )
    return dataset


DATASET = ArtifactType(name="dataset", suffix=".json", save=save_dataset, load=load_dataset_artifact)
