"""The pipeline DAG: nodes with validated stage configs and typed input wiring.

Every wiring mistake is found here, before anything runs: an unknown stage, an unknown
node or output in an input, a missing or undeclared input, an input of the wrong artifact
type, a cycle, or a stage config that does not validate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from malak_pipe.artifacts import GROUP as ARTIFACT_GROUP
from malak_pipe.artifacts import is_known, known_types
from malak_pipe.engine.config import NodeSpec, RunConfig, describe_validation_error
from malak_pipe.engine.registry import get_stage
from malak_pipe.errors import ConfigError
from malak_pipe.stage import Stage, StageConfig, iter_required_inputs


@dataclass(frozen=True)
class InputRef:
    """An input wired to ``node``'s output ``output``."""

    node: str
    output: str

    def __str__(self) -> str:
        return f"{self.node}.{self.output}"


@dataclass
class Node:
    name: str
    stage: type[Stage]
    config: StageConfig
    inputs: dict[str, InputRef]
    enabled: bool = True
    description: str = ""

    @property
    def upstream(self) -> set[str]:
        return {ref.node for ref in self.inputs.values()}


@dataclass
class Graph:
    nodes: dict[str, Node]
    order: list[str] = field(default_factory=list)

    def dependants(self, name: str) -> list[str]:
        """Every node downstream of ``name``, in topological order."""
        reached = {name}
        for other in self.order:
            if self.nodes[other].upstream & reached:
                reached.add(other)
        return [n for n in self.order if n in reached and n != name]

    def ancestors(self, name: str) -> set[str]:
        found: set[str] = set()
        stack = list(self.nodes[name].upstream)
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(self.nodes[current].upstream)
        return found


def merge(base: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of ``delta`` over ``base`` (mappings merge, everything else replaces)."""
    merged = dict(base)
    for key, value in delta.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_graph(run_cfg: RunConfig, sources: dict[str, str] | None = None) -> Graph:
    """Validate every node and its wiring; return the graph in topological order."""
    sources = sources or {}
    if not run_cfg.pipeline:
        raise ConfigError("the pipeline has no nodes", path="pipeline", hint="add nodes or pick pipeline=default")
    stages = {name: get_stage(spec.stage, path=f"pipeline.{name}.stage") for name, spec in run_cfg.pipeline.items()}
    for name, stage in stages.items():
        _check_artifact_types(stage, f"pipeline.{name}.stage")
    nodes = {}
    for name, spec in run_cfg.pipeline.items():
        config = _validate_config(name, spec, stages[name], sources.get(name))
        inputs = _wire_inputs(name, spec, stages)
        nodes[name] = Node(name, stages[name], config, inputs, spec.enabled, spec.description)
    graph = Graph(nodes)
    graph.order = _topological_order(nodes)
    return graph


def _check_artifact_types(stage: type[Stage], path: str) -> None:
    """Every artifact type a stage declares is registered (checked by name, nothing imported)."""
    declared = [t for name in stage.inputs for t in stage.accepted_types(name)] + list(stage.outputs.values())
    unknown = sorted({t for t in declared if not is_known(t)})
    if unknown:
        raise ConfigError(
            f"stage '{stage.name}' declares unregistered artifact type(s) {unknown}",
            path=path,
            hint=f"register them in the '{ARTIFACT_GROUP}' entry-point group, or use one of {known_types()}",
        )


def _validate_config(name: str, spec: NodeSpec, stage: type[Stage], source: str | None) -> StageConfig:
    try:
        return stage.Config.model_validate(merge(spec.config, spec.params))
    except ValidationError as exc:
        prefix = source if source and not _touches_params(exc, spec) else f"pipeline.{name}.config"
        fix = f"fix the value in the config (stage '{spec.stage}' of node '{name}')"
        raise describe_validation_error(exc, prefix, fix) from None


def _touches_params(exc: ValidationError, spec: NodeSpec) -> bool:
    return any(err["loc"] and err["loc"][0] in spec.params for err in exc.errors())


def _wire_inputs(name: str, spec: NodeSpec, stages: dict[str, type[Stage]]) -> dict[str, InputRef]:
    stage = stages[name]
    path = f"pipeline.{name}.inputs"
    for declared in spec.inputs:
        if declared not in stage.inputs:
            raise ConfigError(
                f"stage '{spec.stage}' has no input '{declared}'",
                path=f"{path}.{declared}",
                hint=f"its inputs are: {', '.join(stage.inputs) or 'none'}",
            )
    missing = [i for i in iter_required_inputs(stage) if i not in spec.inputs]
    if missing:
        raise ConfigError(
            f"required input(s) not wired: {', '.join(missing)}",
            path=path,
            hint=f"add e.g. {missing[0]}: <node>.<output> (stage '{spec.stage}' needs {_describe_inputs(stage)})",
        )
    return {inp: _resolve_ref(name, inp, ref, stages) for inp, ref in spec.inputs.items()}


def _describe_inputs(stage: type[Stage]) -> str:
    return ", ".join(f"{n}: {'|'.join(stage.accepted_types(n))}" for n in stage.inputs)


def _resolve_ref(name: str, inp: str, ref: str, stages: dict[str, type[Stage]]) -> InputRef:
    path = f"pipeline.{name}.inputs.{inp}"
    source, _, output = ref.partition(".")
    if source not in stages:
        raise ConfigError(
            f"input '{inp}' refers to unknown node '{source}'",
            path=path,
            hint=f"write <node>.<output> with a node of this pipeline: {', '.join(sorted(stages))}",
        )
    outputs = stages[source].outputs
    if not output and len(outputs) == 1:
        output = next(iter(outputs))
    if output not in outputs:
        raise ConfigError(
            f"node '{source}' has no output '{output}'",
            path=path,
            hint=f"its outputs are: {', '.join(f'{source}.{o}' for o in outputs) or 'none'}",
        )
    produced = outputs[output]
    accepted = stages[name].accepted_types(inp)
    if produced not in accepted:
        raise ConfigError(
            f"input '{inp}' takes {' or '.join(accepted)} but '{source}.{output}' is a {produced}",
            path=path,
            hint="wire an output of the right artifact type",
        )
    return InputRef(source, output)


def _topological_order(nodes: dict[str, Node]) -> list[str]:
    remaining = {name: set(node.upstream) for name, node in nodes.items()}
    order: list[str] = []
    while remaining:
        ready = sorted(n for n, deps in remaining.items() if not deps)
        if not ready:
            cycle = _find_cycle(remaining)
            raise ConfigError(
                f"the pipeline has a cycle: {' -> '.join(cycle)}",
                path=f"pipeline.{cycle[0]}.inputs",
                hint="remove one of these inputs so data flows one way",
            )
        for name in ready:
            order.append(name)
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def _find_cycle(remaining: dict[str, set[str]]) -> list[str]:
    start = sorted(remaining)[0]
    path = [start]
    current = start
    while True:
        current = sorted(remaining[current])[0]
        if current in path:
            return path[path.index(current) :] + [current]
        path.append(current)
