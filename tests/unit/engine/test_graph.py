"""Graph validation: every wiring mistake is one ConfigError naming the config path."""

from __future__ import annotations

import pytest

from malak_pipe.engine.config import parse_run_config
from malak_pipe.engine.graph import build_graph
from malak_pipe.errors import ConfigError
from tests.unit.engine import toy_stages  # noqa: F401  (registers the toy stages)


def graph_of(pipeline: dict, sources=None):
    return build_graph(parse_run_config({"pipeline": pipeline}), sources)


GOOD = {
    "src": {"stage": "toy_source"},
    "add": {"stage": "toy_add", "inputs": {"x": "src.out"}, "config": {"amount": 2}},
    "sink": {"stage": "toy_sink", "inputs": {"a": "add"}},
}


def test_good_pipeline_in_topological_order():
    graph = graph_of(GOOD)
    assert graph.order == ["src", "add", "sink"]
    assert graph.nodes["add"].config.amount == 2
    assert str(graph.nodes["sink"].inputs["a"]) == "add.out"  # "node" alone = its only output
    assert graph.dependants("src") == ["add", "sink"]


def test_params_merge_over_config():
    pipe = dict(GOOD, add={**GOOD["add"], "params": {"amount": 5}})
    assert graph_of(pipe).nodes["add"].config.amount == 5


BAD = [
    ({"src": {"stage": "nope"}}, "pipeline.src.stage", "unknown stage 'nope'"),
    ({**GOOD, "add": {"stage": "toy_add", "inputs": {"x": "ghost.out"}}}, "pipeline.add.inputs.x", "unknown node"),
    ({**GOOD, "add": {"stage": "toy_add", "inputs": {"x": "src.nothing"}}}, "pipeline.add.inputs.x", "no output"),
    ({**GOOD, "add": {"stage": "toy_add"}}, "pipeline.add.inputs", "not wired: x"),
    ({**GOOD, "add": {"stage": "toy_add", "inputs": {"x": "src.out", "y": "src.out"}}}, "inputs.y", "no input 'y'"),
    ({**GOOD, "add": {"stage": "toy_add", "inputs": {"x": "src"}, "config": {"amount": -1}}},
     "pipeline.add.config.amount", "greater than 0"),
    ({**GOOD, "add": {"stage": "toy_add", "inputs": {"x": "src"}, "config": {"amount": "many"}}},
     "pipeline.add.config.amount", "valid integer"),
    ({**GOOD, "add": {"stage": "toy_add", "inputs": {"x": "src"}, "config": {"amout": 1}}},
     "pipeline.add.config.amout", "unknown key"),
    ({"a": {"stage": "toy_add", "inputs": {"x": "b.out"}}, "b": {"stage": "toy_add", "inputs": {"x": "a.out"}}},
     "pipeline.a.inputs", "cycle"),
]


@pytest.mark.parametrize(("pipeline", "path", "words"), BAD)
def test_bad_wiring_is_one_clear_error(pipeline, path, words):
    with pytest.raises(ConfigError) as info:
        graph_of(pipeline)
    text = info.value.render()
    assert path in text
    assert words in text


def test_error_names_the_interpolation_source():
    pipe = {**GOOD, "add": {"stage": "toy_add", "inputs": {"x": "src"}, "config": {"amount": 0}}}
    with pytest.raises(ConfigError) as info:
        graph_of(pipe, sources={"add": "stage.toy_add"})
    assert "stage.toy_add.amount" in info.value.render()


def test_wrong_artifact_type():
    from malak_pipe.engine.registry import register_stage
    from malak_pipe.stage import Stage

    @register_stage
    class WantsModel(Stage):
        name = "toy_wants_model"
        inputs = {"model": "torch_model"}

    with pytest.raises(ConfigError, match="takes torch_model but 'src.out' is a json"):
        graph_of({"src": {"stage": "toy_source"}, "m": {"stage": "toy_wants_model", "inputs": {"model": "src"}}})


def test_missing_pipeline_section():
    with pytest.raises(ConfigError, match="no 'pipeline' section"):
        parse_run_config({"seed": 1})


def test_unknown_top_level_key():
    with pytest.raises(ConfigError, match="epochz: unknown key"):
        parse_run_config({"pipeline": {}, "epochz": 3})
