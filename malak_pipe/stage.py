"""The stage contract: a pydantic config, declared inputs/outputs and a ``run`` method.

A stage plugin is a thin class that validates its config and calls library code::

    class PTQStaticConfig(StageConfig):
        backend: Literal["x86", "fbgemm", "qnnpack"] = "x86"

    class PTQStatic(Stage):
        name = "ptq_static"
        version = 1                      # bump when the outputs for a config would change
        Config = PTQStaticConfig
        inputs = {"model": "torch_model", "data": "dataset"}
        outputs = {"model": "torch_model_int8"}

        def run(self, cfg, ctx):
            model = ptq_static(ctx.load("model"), ...)
            ctx.save("model", model)
            return StageResult(metrics={"test_top1": ...})

Stages are found through the ``malak_pipe.stages`` entry-point group (see
malak_pipe/engine/registry.py); the engine never imports a stage by name. A stage never chooses its own paths: the
context gives its directory and ``ctx.save`` writes atomically.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field


class StageConfig(BaseModel):
    """Base of every stage config: unknown keys are errors and configs are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StageResult(BaseModel):
    """What a stage returns: metrics (snake_case names, JSON values) and warnings.

    Outputs are recorded by ``ctx.save`` and need not be returned.
    """

    model_config = ConfigDict(extra="forbid")

    metrics: dict[str, Any] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)


class Progress(Protocol):
    """A progress bar inside a long stage (epochs, batches, images)."""

    def advance(self, steps: int = 1, **fields: Any) -> None: ...


class StageContext(Protocol):
    """What the runner hands to ``Stage.run``."""

    node: str
    dir: Path

    def load(self, input_name: str) -> Any:
        """The object behind an input, loaded by its artifact type."""

    def input_path(self, input_name: str) -> Path:
        """The file or directory behind an input."""

    def has_input(self, input_name: str) -> bool:
        """Whether an optional input is wired."""

    def input_metrics(self, input_name: str) -> dict[str, Any]:
        """Metrics of the node that produced an input (for drops against a baseline)."""

    def save(self, output_name: str, obj: Any) -> Path:
        """Write an output through its artifact type, atomically; returns its final path."""

    def output_path(self, output_name: str) -> AbstractContextManager[Path]:
        """A temporary path to write an output by hand (a tool writes it); renamed on exit."""

    def progress(self, total: int | None, description: str) -> AbstractContextManager[Progress]:
        """A progress bar shown in the live view."""

    def log(self, message: str) -> None:
        """A line on the console, attributed to this node."""


InputSpec = str | tuple[str, ...]


@dataclass(frozen=True)
class ExternalCode:
    """Code outside the Python package that computes a stage's outputs: ``files`` (files or
    directories: C sources, linker scripts) and ``tools`` (commands whose ``--version`` line
    is recorded: compilers, simulators). Both enter the node's cache key."""

    files: tuple[Path, ...] = ()
    tools: tuple[str, ...] = ()


class UserCode(Protocol):
    """A config object that names user code (a factory model's module, say) implements this,
    so the source of those modules enters the cache key of every node configured with it."""

    def code_modules(self) -> list[str]:
        """Import names of the modules whose source changes what the config builds."""


class Stage:
    """Base class of stage plugins. Subclasses set the class variables and ``run``."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    Config: ClassVar[type[StageConfig]] = StageConfig
    inputs: ClassVar[dict[str, InputSpec]] = {}
    optional_inputs: ClassVar[frozenset[str]] = frozenset()
    outputs: ClassVar[dict[str, str]] = {}
    description: ClassVar[str] = ""
    summary: ClassVar[dict[str, str] | None] = None
    """The metrics the console's tables show for this stage, in order: metric name -> a
    template with one replacement field, e.g. ``"top1 {:.2%}"``. Besides Python's format
    specs, ``{:bytes}`` prints a size (``363.3 kB``), ``{:M}`` millions (``0.55 M``) and
    ``{:yes|no}`` picks a word by a boolean. Metrics a run lacks are left out; a stage that
    declares nothing shows its first scalar metrics as ``name value``."""
    provides: ClassVar[frozenset[str]] = frozenset()
    """Documented metric layouts this stage's metrics follow (docs/CONTRACTS.md), so reports
    can find them without knowing stage names: ``latency_by_input`` (``metrics.latency``
    maps input names to ``{median_ms, p90_ms, speedup_vs_torch_fp32}``) and
    ``per_layer_latency`` (``metrics.per_layer_top``: a list of ``{name, time_ms}``)."""

    @classmethod
    def external_code(cls, cfg: StageConfig) -> ExternalCode:
        """Files and tools outside the Python package this stage's outputs depend on.

        The engine hashes the stage's own module and every malak_pipe module it imports by
        itself (malak_pipe/engine/code.py); a stage that compiles C or runs a simulator
        names those sources and commands here.
        """
        return ExternalCode()

    @classmethod
    def source_fingerprint(cls, cfg: StageConfig) -> str | None:
        """For stages that read outside data (files, bundled datasets): a content hash of it.

        It enters the cache key, so a changed dataset on disk invalidates the cache.
        """
        return None

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def accepted_types(cls, input_name: str) -> tuple[str, ...]:
        spec = cls.inputs[input_name]
        return (spec,) if isinstance(spec, str) else tuple(spec)


def iter_required_inputs(stage: type[Stage]) -> Iterator[str]:
    for name in stage.inputs:
        if name not in stage.optional_inputs:
            yield name
