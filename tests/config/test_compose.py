"""Compose every experiment (and the default) with Hydra's compose API and validate it."""

from __future__ import annotations

from importlib.resources import files

import pytest
from hydra import compose, initialize_config_module

from malak_pipe.engine.config import to_run_config
from malak_pipe.engine.graph import build_graph

EXPERIMENTS = sorted(
    p.name[:-5] for p in (files("malak_pipe.conf") / "experiment").iterdir() if p.name.endswith(".yaml")
)


def composed(overrides: list[str]):
    with initialize_config_module(config_module="malak_pipe.conf", version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=False)


def test_there_are_experiments():
    assert "smoke" in EXPERIMENTS


@pytest.mark.parametrize("overrides", [[]] + [[f"experiment={name}"] for name in EXPERIMENTS], ids=str)
def test_every_experiment_composes_and_validates(overrides):
    run_cfg, sources = to_run_config(composed(overrides))
    graph = build_graph(run_cfg, sources)
    assert graph.order, "a pipeline with no nodes"
    for node in graph.nodes.values():
        assert node.stage.name == run_cfg.pipeline[node.name].stage


@pytest.mark.parametrize("group", ["data", "model"])
def test_every_option_of_a_group_composes(group):
    for option in (files("malak_pipe.conf") / group).iterdir():
        if option.name.endswith(".yaml"):
            run_cfg, sources = to_run_config(composed([f"{group}={option.name[:-5]}"]))
            build_graph(run_cfg, sources)
