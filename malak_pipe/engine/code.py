"""The code that computes a node, as file hashes for its cache key.

A node's outputs are a function of its config, its inputs and the code that ran. This
module finds that code without importing it:

* the stage's module and every malak_pipe module it imports, transitively (imports inside
  functions included: stages import the library lazily), with the ``__init__`` of every
  package on the way (importing a module runs them), and the modules of the artifact types
  it loads and saves;
* user code named in its config: any config object with a ``code_modules()`` method (a
  factory model's module, for instance) contributes those modules; a module inside a
  package brings every ``.py`` file of its top-level package, a top-level module brings
  itself and the modules of its own directory that it imports, transitively;
* what the stage declares outside Python (:meth:`malak_pipe.stage.Stage.external_code`):
  C sources, linker scripts, and tool versions (``arm-none-eabi-gcc --version``);
* the versions of the Python runtime and of the numerical packages the library uses.

Each file is read and parsed once per process. A README or a test is never reached, so
editing one invalidates nothing; editing one line of a library module invalidates exactly
the stages whose closure holds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from malak_pipe.artifacts import GROUP as ARTIFACT_GROUP
from malak_pipe.stage import Stage, StageConfig

PACKAGE = "malak_pipe"
TOOLS_MEMO = "tools.json"
RUNTIME_DISTRIBUTIONS = ("torch", "numpy", "onnx", "onnxruntime", "onnxscript", "torch-pruning", "scikit-learn")


@dataclass(frozen=True)
class CodeFingerprint:
    """Hashes of everything a node's code consists of: ``files`` (label -> sha256),
    ``tools`` (command -> its version line) and ``runtime`` (distribution -> version)."""

    files: dict[str, str]
    tools: dict[str, str]
    runtime: dict[str, str]

    def digest(self) -> str:
        h = hashlib.sha256()
        for section in (self.files, self.tools, self.runtime):
            for label in sorted(section):
                h.update(f"{label}\0{section[label]}\n".encode())
            h.update(b"\1")
        return h.hexdigest()

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {"files": self.files, "tools": self.tools, "runtime": self.runtime}


# ---------------------------------------------------------------- module files


def _file_sha256(path: Path) -> str:
    """A file's sha256, read once per process while its size and modification time stay put
    (a notebook that edits a model file and reruns gets the new hash)."""
    st = path.stat()
    return _sha256_at(path, st.st_size, st.st_mtime_ns)


@cache
def _sha256_at(path: Path, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@cache
def module_file(name: str) -> Path | None:
    """The source file of an importable module, found without executing it.

    Top-level packages and their direct children are located by ``importlib.util.find_spec``
    (which honours install mappings such as ``malak_pipe.stages`` -> ``stages/`` and runs at
    most the top-level ``__init__``); deeper modules follow their parent's directory. The
    answer never depends on what happens to be imported already, so keys are stable.
    """
    parts = name.split(".")
    if len(parts) <= 2:
        spec = _find_spec(name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        return Path(spec.origin)
    search = _search_locations(".".join(parts[:2]))
    return _descend(search, parts[2:])


@cache
def _search_locations(package: str) -> list[Path]:
    spec = _find_spec(package)
    return [Path(p) for p in spec.submodule_search_locations or []] if spec else []


def _find_spec(name: str) -> Any:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None


def _descend(search: list[Path], rest: list[str]) -> Path | None:
    for base in search:
        candidate = base.joinpath(*rest)
        for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
            if path.is_file():
                return path
    return None


_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n#;]+)", re.MULTILINE)
_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)", re.MULTILINE)
_MODULE_STRING = re.compile(r"[\"']([A-Za-z_]\w*(?:\.\w+)+)(?::[\w.]+)?[\"']")


def _imports_of(path: Path, module: str) -> tuple[str, ...]:
    st = path.stat()
    return _imports_at(path, module, st.st_size, st.st_mtime_ns)


@cache
def _imports_at(path: Path, module: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    """Every module name ``module`` (at ``path``) imports, anywhere in its body, with their
    parent packages.

    Read with regular expressions rather than parsed (this runs on every invocation, also
    fully cached ones): an import-like line inside a docstring counts too, which can only
    add a file to a key. String constants that read as module paths
    (``"malak_pipe.models.resnet:build_resnet18"``) count as well: the library imports
    lazily through such tables."""
    text = path.read_text()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = [name.split()[0] for match in _IMPORT.finditer(text) for name in match.group(1).split(",") if name.strip()]
    for dots, base, names in _FROM.findall(text):
        absolute = _absolute(len(dots), base, package)
        if absolute:
            found.append(absolute)
            members = [n.split()[0] for n in names.strip("()").split(",") if n.strip() and n.strip() != "*"]
            found.extend(f"{absolute}.{member}" for member in members)
    found.extend(_MODULE_STRING.findall(text))
    return tuple(sorted({parent for name in found for parent in _with_parents(name)}))


def _absolute(level: int, module: str, package: str) -> str | None:
    if level == 0:
        return module or None
    parts = package.split(".")
    if level - 1 > len(parts):
        return None
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{module}" if module else base


def _with_parents(name: str) -> Iterator[str]:
    parts = name.split(".")
    for depth in range(1, len(parts) + 1):
        yield ".".join(parts[:depth])


def module_closure(roots: Iterable[str], within: tuple[str, ...] | Path) -> dict[str, Path]:
    """Modules reachable from ``roots`` by imports, keeping those inside ``within``: top-level
    package names (``("malak_pipe", "my_stages")``) or a directory (user code)."""
    inside = _package_filter(within)
    found: dict[str, Path] = {}
    seen: set[str] = set()
    stack = [name for root in roots for name in _with_parents(root)]
    while stack:
        name = stack.pop()
        if name in seen or not inside(name, None):
            continue
        seen.add(name)
        path = module_file(name)
        if path is None or path.suffix != ".py" or not inside(name, path):
            continue
        found[name] = path
        stack.extend(_imports_of(path, name))  # parents included: importing a module runs them
    return found


def _package_filter(within: tuple[str, ...] | Path):
    """``inside(name, path)``: by name alone when ``path`` is None (before resolving it)."""
    if isinstance(within, Path):
        root = within.resolve()
        return lambda name, path: path is None or path.resolve().is_relative_to(root)
    return lambda name, path: name.split(".")[0] in within


# ---------------------------------------------------------------- user code


def config_code_modules(cfg: StageConfig) -> list[str]:
    """Modules named by objects in the config tree that implement ``code_modules()``."""
    found: list[str] = []
    stack: list[Any] = [cfg]
    while stack:
        value = stack.pop()
        if isinstance(value, BaseModel):
            hook = getattr(value, "code_modules", None)
            if callable(hook):
                found.extend(hook())
            stack.extend(getattr(value, field) for field in type(value).model_fields)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return sorted(set(found))


def user_code_files(module: str) -> dict[str, Path]:
    """The files of a user module: its top-level package's ``.py`` files, or, for a
    top-level module, itself and the modules of its directory it imports."""
    top = module.split(".")[0]
    top_file = module_file(top)
    if top_file is None:
        return {}
    if top_file.name == "__init__.py":
        package_dir = top_file.parent
        return {f"{top}/{p.relative_to(package_dir).as_posix()}": p for p in sorted(package_dir.rglob("*.py"))}
    closure = module_closure([module], top_file.parent)
    return {f"{path.name}": path for path in closure.values()}


# ---------------------------------------------------------------- tools, runtime


@cache
def tool_version(command: str, memo_dir: Path | None = None) -> str:
    """The first line ``command --version`` prints, or ``missing``.

    With ``memo_dir`` the answer is remembered in ``memo_dir/tools.json`` by the binary's
    path, size and modification time, so a fully cached run does not start compilers."""
    binary = shutil.which(command)
    if binary is None:
        return "missing"
    st = os.stat(binary)
    identity = f"{os.path.realpath(binary)}:{st.st_size}:{st.st_mtime_ns}"
    memo = _read_memo(memo_dir)
    if identity in memo:
        return memo[identity]
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return "missing"
    lines = (out.stdout or out.stderr).strip().splitlines()
    found = lines[0] if lines else f"exit {out.returncode}"
    if memo_dir is not None:
        _write_memo(memo_dir, {**memo, identity: found})
    return found


def _read_memo(memo_dir: Path | None) -> dict[str, str]:
    try:
        return json.loads((memo_dir / TOOLS_MEMO).read_text()) if memo_dir else {}
    except (OSError, ValueError):
        return {}


def _write_memo(memo_dir: Path, memo: dict[str, str]) -> None:
    from malak_pipe.engine.atomic import write_json_atomic

    with contextlib.suppress(OSError):
        write_json_atomic(memo_dir / TOOLS_MEMO, memo)


@cache
def runtime_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in RUNTIME_DISTRIBUTIONS:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "absent"
    return found


# ---------------------------------------------------------------- per stage


@cache
def _artifact_modules() -> dict[str, str]:
    return {ep.name: ep.value.split(":")[0] for ep in entry_points(group=ARTIFACT_GROUP)}


def _package_label(name: str, path: Path) -> str:
    return name.replace(".", "/") + ("/__init__.py" if path.name == "__init__.py" else ".py")


@cache
def stage_code_files(stage: type[Stage]) -> dict[str, str]:
    """Label -> sha256 of the stage's module closure inside malak_pipe and the stage's own
    top-level package (a third-party plugin), with the modules of its artifact types."""
    types = {t for name in stage.inputs for t in stage.accepted_types(name)} | set(stage.outputs.values())
    artifact_modules = [_artifact_modules()[t] for t in sorted(types) if t in _artifact_modules()]
    roots = [stage.__module__, *artifact_modules]
    closure = module_closure(roots, (PACKAGE, stage.__module__.split(".")[0]))
    return {_package_label(name, path): _file_sha256(path) for name, path in sorted(closure.items())}


def _external_files(paths: Iterable[Path]) -> dict[str, str]:
    files: dict[str, str] = {}
    for root in paths:
        members = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in members:
            label = f"{root.name}/{path.relative_to(root).as_posix()}" if root.is_dir() else root.name
            files[label] = _file_sha256(path)
    return files


def code_fingerprint(stage: type[Stage], cfg: StageConfig, memo_dir: Path | None = None) -> CodeFingerprint:
    """Everything of the code that computes a node of ``stage`` with ``cfg`` (``memo_dir``:
    where tool versions are remembered, normally the cache root)."""
    files = dict(stage_code_files(stage))
    for module in config_code_modules(cfg):
        files.update({f"user:{label}": _file_sha256(path) for label, path in user_code_files(module).items()})
    external = stage.external_code(cfg)
    files.update({f"external:{label}": sha for label, sha in _external_files(external.files).items()})
    tools = {command: tool_version(command, memo_dir) for command in external.tools}
    return CodeFingerprint(files=files, tools=tools, runtime=runtime_versions())
