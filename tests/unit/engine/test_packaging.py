"""Every config and firmware folder is declared in pyproject.toml, so a wheel ships it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _folders(top: str, prefix: str) -> set[str]:
    base = ROOT / top
    return {prefix} | {
        f"{prefix}.{'.'.join(p.relative_to(base).parts)}"
        for p in base.rglob("*")
        if p.is_dir() and "__pycache__" not in p.parts
    }


def test_conf_and_firmware_folders_are_declared_packages():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    wanted = _folders("conf", "malak_pipe.conf") | _folders("firmware", "malak_pipe.mcu.firmware")
    missing = sorted(wanted - declared)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
