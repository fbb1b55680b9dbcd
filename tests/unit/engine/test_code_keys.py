"""The code that computes a node is in its cache key: which files, and what a change invalidates."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from malak_pipe.cli.console import RunConsole
from malak_pipe.engine import code
from malak_pipe.engine.app import execute, plan_rows
from malak_pipe.engine.code import code_fingerprint, stage_code_files, user_code_files
from malak_pipe.engine.config import parse_run_config
from malak_pipe.engine.graph import build_graph
from malak_pipe.engine.registry import get_stage
from malak_pipe.engine.store import Cache
from tests.unit.engine import toy_stages
from tests.unit.engine.test_runner import PIPE


def test_a_stage_closure_follows_lazy_library_imports_and_stops_at_the_package():
    files = stage_code_files(get_stage("ptq_static"))
    assert "malak_pipe/stages/ptq_static.py" in files
    assert "malak_pipe/compress/quantize.py" in files  # imported inside run() through compress's lazy table
    assert "malak_pipe/compress/_quant_backend.py" in files
    assert "malak_pipe/compress/artifact.py" in files  # its output artifact type's module
    assert "malak_pipe/models/simple_cnn.py" in files  # the zoo table the model config names
    assert not any(f.startswith(("malak_pipe/mcu/", "malak_pipe/engine/", "malak_pipe/cli/")) for f in files)
    assert not any("torch" in f or "README" in f or f.startswith("tests/") for f in files)


def test_firmware_stages_add_the_c_runtime_and_their_tools():
    stage = get_stage("firmware_build")
    target = yaml.safe_load((files("malak_pipe.conf") / "target" / "mps2_an500.yaml").read_text())
    cfg = stage.Config.model_validate({"target": target})
    fingerprint = code_fingerprint(stage, cfg)
    c_files = [f for f in fingerprint.files if f.startswith("external:")]
    assert any(f.endswith(".h") for f in c_files) and any(f.endswith(".ld") for f in c_files)
    assert set(fingerprint.tools) == {"arm-none-eabi-gcc"}
    assert "torch" in fingerprint.runtime and "python" in fingerprint.runtime


def test_a_third_party_stage_hashes_its_own_package():
    files = stage_code_files(toy_stages.Add)
    assert "tests/unit/engine/toy_stages.py" in files


def run(tmp_path: Path, name: str) -> dict:
    cfg = parse_run_config({"pipeline": PIPE, "run": {"live": False}})
    execute(cfg, {}, tmp_path / name, [], RunConsole(live=False))
    return json.loads((tmp_path / name / "results.json").read_text())["nodes"]


def test_changing_one_module_invalidates_exactly_the_nodes_that_import_it(tmp_path, monkeypatch):
    first = run(tmp_path, "a")
    assert {r["status"] for r in first.values()} == {"ok"}
    changed = Path(toy_stages.__file__).resolve()
    real = code._file_sha256

    def edited(path: Path) -> str:  # the toy module's source, one line changed
        return "0" * 64 if Path(path).resolve() == changed else real(path)

    monkeypatch.setattr(code, "_file_sha256", edited)
    stage_code_files.cache_clear()
    try:
        cfg = parse_run_config({"pipeline": PIPE, "run": {"live": False}})
        cache = Cache(Path(__import__("os").environ["MALAK_CACHE_DIR"]))
        rows = {row[0]: row for row in plan_rows(build_graph(cfg), cache, ["src", "add", "sink"], {})}
    finally:
        stage_code_files.cache_clear()
    for node in ("src", "add", "sink"):  # all three toy stages live in the changed module
        assert rows[node][3] == "will run"
    assert "code: tests/unit/engine/toy_stages.py" in rows["src"][5]


def test_a_library_file_outside_a_stage_closure_leaves_it_cached(tmp_path, monkeypatch):
    stage = get_stage("ptq_static")
    before = code_fingerprint(stage, stage.Config()).digest()
    target = next(p for p in Path(code.__file__).parents[1].glob("mcu/*.py"))
    real = code._file_sha256
    monkeypatch.setattr(code, "_file_sha256", lambda p: "0" * 64 if Path(p) == target else real(p))
    stage_code_files.cache_clear()
    try:
        assert code_fingerprint(stage, stage.Config()).digest() == before
        mcu_stage = get_stage("codegen")
        assert any(label.startswith("malak_pipe/mcu/") for label in stage_code_files(mcu_stage))
    finally:
        stage_code_files.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_module_paths():
    """Each test writes its user modules in its own tmp dir: forget where earlier ones were."""
    code.module_file.cache_clear()
    yield
    code.module_file.cache_clear()


def write_package(root: Path, width: int) -> None:
    pkg = root / "userpkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "blocks.py").write_text(f"WIDTH = {width}\n")
    (pkg / "net.py").write_text("from userpkg.blocks import WIDTH\n\ndef build():\n    return WIDTH\n")
    (root / "loose.py").write_text("import helper\n\ndef build():\n    return helper.VALUE\n")
    (root / "helper.py").write_text("VALUE = 1\n")
    (root / "unrelated.py").write_text("X = 1\n")


def test_user_code_is_its_package_or_its_directory_imports(tmp_path, monkeypatch):
    write_package(tmp_path, 40)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert sorted(user_code_files("userpkg.net")) == ["userpkg/__init__.py", "userpkg/blocks.py", "userpkg/net.py"]
    assert sorted(user_code_files("loose")) == ["helper.py", "loose.py"]  # not unrelated.py


@pytest.mark.parametrize("factory", ["userpkg.net:build", "loose:build"])
def test_a_factory_model_config_puts_the_user_source_in_the_key(tmp_path, monkeypatch, factory):
    write_package(tmp_path, 40)
    monkeypatch.syspath_prepend(str(tmp_path))
    stage = get_stage("train")
    cfg = stage.Config.model_validate({"model": {"name": "factory", "factory": factory}})
    before = code_fingerprint(stage, cfg)
    assert any(label.startswith("user:") for label in before.files)
    edited = tmp_path / ("userpkg/blocks.py" if factory.startswith("userpkg") else "helper.py")
    edited.write_text(edited.read_text() + "# widened\n")
    assert code_fingerprint(stage, cfg).digest() != before.digest()
    zoo = stage.Config.model_validate({"model": {"name": "simple_cnn"}})
    assert not any(label.startswith("user:") for label in code_fingerprint(stage, zoo).files)
