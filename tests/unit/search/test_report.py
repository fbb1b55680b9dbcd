"""What a search writes: best.yaml reproduces the pick (groups in the defaults list, values in
the body, overlays on the command line); the Markdown table."""

from __future__ import annotations

import yaml

from malak_pipe.search.front import TrialRecord
from malak_pipe.search.report import is_group_override, override_tree, to_markdown, write_best


def test_override_tree_parses_values_and_drops_plus():
    assert override_tree(["a.b=1", "a.c=x", "++p.q.enabled=false", "f=0.5"]) == {
        "a": {"b": 1, "c": "x"}, "p": {"q": {"enabled": False}}, "f": 0.5}


def test_group_overrides_are_told_from_values():
    groups = {"data", "model", "stage"}
    assert is_group_override("data=digits", groups) and is_group_override("stage/train=cifar10_sgd", groups)
    assert not is_group_override("model.width_mult=0.5", groups) and not is_group_override("seed=1", groups)


def test_best_yaml_holds_the_experiment_groups_and_values(tmp_path):
    best = TrialRecord(7, "complete", {"w": 0.5}, [0.9], True)
    ran = ["experiment=fits", "data=digits", "debug=smoke", "model.width_mult=0.5", "++pipeline.qat.enabled=false",
           "run.trial={x:1}", "hydra.sweep.dir=/x"]
    path, extra = write_best(tmp_path, ran, best, "study", {"data", "debug", "experiment", "model"}, {"debug"})
    text = path.read_text()
    assert text.startswith("# @package _global_")
    body = yaml.safe_load(text)
    assert body["defaults"] == ["fits", {"override /data": "digits"}, "_self_"]
    assert body["model"] == {"width_mult": 0.5} and body["pipeline"] == {"qat": {"enabled": False}}
    assert "run" not in body and "hydra" not in body
    assert extra[0] == "debug=smoke" and "model.width_mult=0.5" in extra  # an overlay's values would win


def test_markdown_marks_the_front_and_the_pick():
    summary = {
        "study": "s", "counts": "2 trials", "objectives": [{"metric": "sim_run.top1"}],
        "trials": [{"number": 0, "state": "complete", "values": [0.9], "feasible": True, "params": {"w": 0.5}},
                   {"number": 1, "state": "infeasible", "values": [], "feasible": False, "params": {"w": 1.0}}],
        "front": [{"number": 0}],
        "pick": {"number": 0, "params": {"w": 0.5}, "test": {"test_top1_on_target": 0.88}},
        "reproduce": "malak-run +experiment=best",
    }
    text = to_markdown(summary)
    assert "| 0 * | complete | 0.9 | w=0.5 |" in text and "| 1 | infeasible | – | w=1 |" in text
    assert "test_top1_on_target | 0.88" in text and "+experiment=best" in text
