"""A factory model's checkpoint carries its source hash, so downstream keys see code changes."""

from __future__ import annotations

import hashlib
import importlib
import sys

import torch

from malak_pipe.artifacts import get_type, sha256_of
from malak_pipe.models import ModelArtifact
from malak_pipe.models.config import ModelConfig

SOURCE = """
from torch import nn

def build():
    torch_module = nn.Linear(4, 2)
    return torch_module  # {note}
"""


def save(tmp_path, note: str, name: str):
    (tmp_path / "fact_mod.py").write_text(SOURCE.format(note=note))
    sys.modules.pop("fact_mod", None)
    importlib.invalidate_caches()
    module = importlib.import_module("fact_mod").build()
    torch.manual_seed(0)
    torch.nn.init.ones_(module.weight)
    torch.nn.init.zeros_(module.bias)
    path = tmp_path / name / "model.pt"  # one file name: torch.save records it in the archive
    path.parent.mkdir()
    get_type("torch_model").save(ModelArtifact(ModelConfig(name="factory", factory="fact_mod:build"), module), path)
    return path


def test_same_weights_but_changed_factory_source_give_different_bytes(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    first = save(tmp_path, "v1", "a")
    again = save(tmp_path, "v1", "b")
    changed = save(tmp_path, "v2", "c")
    assert sha256_of(first) == sha256_of(again)
    assert sha256_of(first) != sha256_of(changed)
    checkpoint = torch.load(changed, weights_only=True)
    assert checkpoint["factory_source_sha256"] == hashlib.sha256((tmp_path / "fact_mod.py").read_bytes()).hexdigest()
    loaded = get_type("torch_model").load(changed)
    assert torch.equal(loaded.module.weight, torch.ones(2, 4))
    sys.modules.pop("fact_mod", None)
