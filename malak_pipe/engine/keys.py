"""Cache keys: what a node's outputs are a function of, and why a key changed.

A key is the sha256 of the stage name and ``version`` (the explicit bump), its validated
config, the sha256 of its inputs, the fingerprint of outside data it reads
(``Stage.source_fingerprint``) and the fingerprint of its code (malak_pipe/engine/code.py).
The parts are stored with each cache entry, so a node that is not cached can say what
differs from the last entry computed for the same node and stage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from malak_pipe.engine.code import CodeFingerprint, code_fingerprint
from malak_pipe.engine.graph import Node


@dataclass(frozen=True)
class KeyParts:
    """The components of one node's cache key."""

    stage: str
    version: int
    config: dict[str, Any]
    inputs: dict[str, str]
    source: str | None
    code: CodeFingerprint

    @property
    def key(self) -> str:
        payload = {
            "stage": self.stage,
            "version": self.version,
            "config": self.config,
            "inputs": dict(sorted(self.inputs.items())),
            "source": self.source,
            "code": self.code.digest(),
        }
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def record(self) -> dict[str, Any]:
        """A JSON-able copy, kept in the cache entry's manifest."""
        return {
            "stage": self.stage,
            "version": self.version,
            "config": self.config,
            "inputs": self.inputs,
            "source": self.source,
            "code": self.code.as_dict(),
        }


def key_parts(
    node: Node, input_hashes: dict[str, str], source: str | None = None, memo_dir: Path | None = None
) -> KeyParts:
    """The key components of ``node`` given its inputs' hashes and its outside-data fingerprint
    (``memo_dir``: where tool versions are remembered, normally the cache root)."""
    return KeyParts(
        stage=node.stage.name,
        version=node.stage.version,
        config=node.config.model_dump(mode="json"),
        inputs=dict(input_hashes),
        source=source,
        code=code_fingerprint(node.stage, node.config, memo_dir),
    )


def explain(parts: KeyParts, previous: dict[str, Any] | None, *, compare_inputs: bool = True) -> str:
    """Why ``parts`` is not in the cache, against the last entry of the same node and stage
    (``compare_inputs=False`` while the inputs are still to be computed)."""
    if previous is None:
        return "new: no earlier entry of this node"
    reasons = []
    if previous.get("version") != parts.version:
        reasons.append(f"stage version {previous.get('version')} -> {parts.version}")
    changed = _changed_leaves(previous.get("config", {}), parts.config)
    if changed:
        reasons.append("config: " + ", ".join(changed[:4]) + (" ..." if len(changed) > 4 else ""))
    before = previous.get("inputs", {})
    inputs = sorted(k for k in set(parts.inputs) | set(before) if parts.inputs.get(k) != before.get(k))
    if inputs and compare_inputs:
        reasons.append("input: " + ", ".join(inputs))
    if previous.get("source") != parts.source:
        reasons.append("outside data changed")
    reasons.extend(_code_reasons(previous.get("code", {}), parts.code))
    return "; ".join(reasons) or ("the cache entry is missing" if compare_inputs else "")


def _code_reasons(previous: dict[str, Any], code: CodeFingerprint) -> list[str]:
    reasons = []
    for section, now in (("code", code.files), ("tool", code.tools), ("runtime", code.runtime)):
        before = previous.get({"code": "files", "tool": "tools", "runtime": "runtime"}[section], {})
        differ = sorted(k for k in set(now) | set(before) if now.get(k) != before.get(k))
        if differ:
            reasons.append(f"{section}: " + ", ".join(differ[:3]) + (" ..." if len(differ) > 3 else ""))
    return reasons


def _changed_leaves(before: Any, after: Any, prefix: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[str] = []
        for key in sorted(set(before) | set(after)):
            found.extend(_changed_leaves(before.get(key), after.get(key), f"{prefix}{key}."))
        return found
    if before != after:
        return [f"{prefix.rstrip('.')} {before!r} -> {after!r}"]
    return []
