"""The validated run config: Hydra's composed DictConfig becomes a pydantic RunConfig here.

No DictConfig travels past :func:`to_run_config`. Interpolations are resolved first, and for
every pipeline node whose ``config`` is an interpolation (``${stage.train}``) the source path
is remembered, so a bad value is reported where the user wrote it (``stage.train.epochs``)
rather than where it was copied to.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from malak_pipe.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CacheSettings(_Strict):
    """Where and whether stage outputs are cached (MALAK_CACHE_DIR overrides ``dir``), and how
    run directories get the cached files: ``hardlink`` (read-only links to the cache objects,
    no copy) or ``copy`` (private writable copies)."""

    enabled: bool = True
    dir: str | None = None
    link: Literal["hardlink", "copy"] = "hardlink"


class RunOptions(_Strict):
    """How this invocation runs: plan only, live view, which nodes, tracebacks, and ``trial``
    (set by the search sweeper: which study trial this run is; see malak_pipe.search)."""

    plan: bool = False
    debug: bool = False
    live: bool | None = None
    only: list[str] | None = None
    trial: dict[str, Any] | None = None


class NodeSpec(_Strict):
    """One pipeline node: which stage, its config, and where its inputs come from.

    ``inputs`` maps the stage's input names to ``"<node>.<output>"`` (or ``"<node>"`` when
    that node has one output). ``params`` is merged over ``config``, so several nodes can
    share ``${stage.prune_magnitude}`` and differ in one field.
    """

    stage: str
    inputs: dict[str, str] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    description: str = ""


class RunConfig(_Strict):
    """The whole composed config of one run."""

    name: str = "default"
    description: str = ""
    seed: int = 0
    data: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    stage: dict[str, dict[str, Any]] = Field(default_factory=dict)
    target: dict[str, Any] = Field(default_factory=dict)
    pipeline: dict[str, NodeSpec]
    cache: CacheSettings = Field(default_factory=CacheSettings)
    run: RunOptions = Field(default_factory=RunOptions)


def dotted(loc: tuple[Any, ...] | list[Any]) -> str:
    """('pipeline', 'train', 'config', 'epochs') -> 'pipeline.train.config.epochs'."""
    return ".".join(str(part) for part in loc)


def describe_validation_error(exc: ValidationError, prefix: str, fix: str) -> ConfigError:
    """One ConfigError listing every field problem with its full config path."""
    lines = []
    for err in exc.errors():
        path = dotted([prefix, *err["loc"]]) if prefix else dotted(err["loc"])
        got = err.get("input")
        shown = "" if err["type"] == "missing" else f" (got {got!r})"
        message = "unknown key: remove it or check its spelling" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{path}: {message}{shown}")
    first_path = lines[0].split(":")[0]
    return ConfigError("invalid config\n  " + "\n  ".join(lines), path=None, hint=fix or f"edit {first_path}")


def config_sources(cfg: Any) -> dict[str, str]:
    """For each pipeline node, the config path its ``config`` was interpolated from, if any.

    ``cfg`` is the unresolved OmegaConf DictConfig (imported lazily: only the CLI has one).
    """
    from omegaconf import OmegaConf

    sources: dict[str, str] = {}
    pipeline = cfg.get("pipeline") or {}
    for name in pipeline:
        node = pipeline[name]
        raw = OmegaConf.to_container(node, resolve=False).get("config") if node is not None else None
        if isinstance(raw, str) and raw.startswith("${") and raw.endswith("}"):
            sources[str(name)] = raw[2:-1]
    return sources


def to_run_config(cfg: Any) -> tuple[RunConfig, dict[str, str]]:
    """Resolve a Hydra DictConfig into a RunConfig and the node config sources."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "config"
        raise ConfigError(
            f"cannot resolve the config: {exc.msg if hasattr(exc, 'msg') else exc}",
            path=str(key),
            hint="set the missing value on the command line (key=value) or fix the interpolation",
        ) from None
    return parse_run_config(container), config_sources(cfg)


def parse_run_config(container: dict[str, Any]) -> RunConfig:
    """Validate a plain dict as a RunConfig, with config paths in the error."""
    if not isinstance(container, dict) or "pipeline" not in container:
        raise ConfigError(
            "the config has no 'pipeline' section",
            path="pipeline",
            hint="pick one: pipeline=default (see conf/pipeline/) or an experiment (+experiment=smoke)",
        )
    try:
        return RunConfig.model_validate(container)
    except ValidationError as exc:
        raise describe_validation_error(exc, "", "") from None
