"""The search space, the goals and the front, on plain values (no study, no runs)."""

from __future__ import annotations

import pytest

from malak_pipe.errors import ConfigError
from malak_pipe.search.front import TrialRecord, dominates, hypervolume, normalized_hypervolume, pareto_front, pick
from malak_pipe.search.goals import judge, parse_goals
from malak_pipe.search.space import SearchSpace


class Scripted:
    """A trial that answers from a dict and records what was asked."""

    def __init__(self, answers):
        self.answers, self.asked = answers, []

    def suggest_categorical(self, name, choices):
        self.asked.append((name, tuple(choices)))
        return self.answers[name]

    def suggest_int(self, name, low, high, *, step=1, log=False):
        self.asked.append((name, "int", low, high, step))
        return self.answers[name]

    def suggest_float(self, name, low, high, *, step=None, log=False):
        self.asked.append((name, "float", low, high, step))
        return self.answers[name]


SPACE = {
    "model.width_mult": {"choices": [0.25, 0.5]},
    "route": {"choices": {"ptq": ["a=1", "++b.enabled=false"], "qat": ["a=2"]}},
    "stage.qat.finetune.epochs": {"low": 1, "high": 3, "when": {"route": "qat"}},
    "stage.prune.ratio": {"low": 0.0, "high": 0.5, "step": 0.1},
}


def test_choices_ranges_and_named_override_lists():
    values, overrides = SearchSpace(SPACE).suggest(
        Scripted({"model.width_mult": 0.5, "route": "qat", "stage.qat.finetune.epochs": 2, "stage.prune.ratio": 0.3})
    )
    assert overrides == ["model.width_mult=0.5", "a=2", "stage.qat.finetune.epochs=2", "stage.prune.ratio=0.3"]
    assert values["route"] == "qat"


def test_a_conditional_parameter_is_not_asked_when_its_condition_fails():
    trial = Scripted({"model.width_mult": 0.25, "route": "ptq", "stage.prune.ratio": 0.0})
    values, overrides = SearchSpace(SPACE).suggest(trial)
    assert "stage.qat.finetune.epochs" not in values
    assert ("stage.qat.finetune.epochs", "int", 1, 3, 1) not in trial.asked
    assert overrides[1:3] == ["a=1", "++b.enabled=false"]
    assert ("stage.prune.ratio", "float", 0.0, 0.5, 0.1) in trial.asked  # a float range stays float


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"x": {"low": 3, "high": 1}}, "low <= high"),
        ({"x": {"choices": []}}, "empty"),
        ({"x": {"low": 1}}, "low and high"),
        ({"x": {"choices": [1], "when": {"later": 1}}, "later": {"choices": [1]}}, "not declared before"),
    ],
)
def test_bad_spaces_name_the_parameter(bad, words):
    with pytest.raises(ConfigError, match=words) as info:
        SearchSpace(bad)
    assert info.value.path.startswith("hydra.sweeper.params.")


OBJECTIVES = [{"metric": "sim_run.top1", "direction": "maximize"},
              {"metric": "firmware_build.flash_bytes", "direction": "minimize"}]
CONSTRAINTS = [
    {"metric": "firmware_build.flash_bytes", "max": 65536},
    {"metric": "firmware_build.ram_bytes", "max": 16384},
]


def nodes(top1=0.9, flash=50_000, ram=10_000, **statuses):
    found = {"sim_run": {"status": "ok", "metrics": {"top1": top1}},
             "firmware_build": {"status": "ok", "metrics": {"flash_bytes": flash, "ram_bytes": ram}}}
    for name, status in statuses.items():
        found[name] = {"status": status, "error": f"{name} said {status}"}
    return found


def test_judge_complete_infeasible_pruned_error():
    objs, cons = parse_goals(OBJECTIVES, CONSTRAINTS)
    ok = judge(nodes(), objs, cons)
    assert ok.state == "complete" and ok.feasible and ok.values == [0.9, 50_000.0]
    over = judge(nodes(ram=20_000), objs, cons)
    assert over.state == "infeasible" and over.violations[1] > 0 and "ram_bytes" in over.reason
    budget = judge(nodes(fit_check="infeasible"), objs, cons)
    assert budget.state == "infeasible" and "fit_check" in budget.reason
    assert judge(nodes(train="pruned"), objs, cons).state == "pruned"
    assert judge(nodes(train="failed"), objs, cons).state == "error"
    missing = judge({"firmware_build": nodes()["firmware_build"]}, objs, cons)
    assert missing.state == "error" and "sim_run.top1" in missing.reason


def test_goals_are_validated():
    with pytest.raises(ConfigError):
        parse_goals([{"metric": "no_dot", "direction": "maximize"}], [])
    with pytest.raises(ConfigError):
        parse_goals([], [])
    with pytest.raises(ConfigError):
        parse_goals(OBJECTIVES, [{"metric": "a.b"}])


def record(number, top1, flash, feasible=True):
    return TrialRecord(number, "complete" if feasible else "infeasible", {}, [top1, flash], feasible)


def test_front_pick_and_hypervolume():
    objs, _ = parse_goals(OBJECTIVES, [])
    trials = [record(0, 0.90, 60_000), record(1, 0.85, 20_000), record(2, 0.80, 30_000), record(3, 0.95, 10_000, False)]
    front = pareto_front(trials, objs)
    assert [t.number for t in front] == [0, 1]  # 2 is dominated by 1; 3 is infeasible
    assert pick(front, objs).number == 0  # the most accurate feasible trial
    assert pick(front, objs, prefer="firmware_build.flash_bytes").number == 1
    assert dominates([1, 1], [1, 2]) and not dominates([1, 1], [1, 1])
    assert hypervolume([[0.2, 0.8], [0.8, 0.2]], [1, 1]) == pytest.approx(0.28)
    assert hypervolume([[0.5, 0.5, 0.5]], [1, 1, 1]) == pytest.approx(0.125)
    bounds = [(0.0, 1.0), (0.0, 100_000.0)]
    hv = normalized_hypervolume(trials, objs, bounds)
    # (1 - 0.9) x 0.6 by trial 0 plus the part trial 1 adds: (0.9 - 0.85) x (0.6 - 0.2) ... as areas
    assert hv == pytest.approx(hypervolume([[0.10, 0.6], [0.15, 0.2], [0.2, 0.3]], [1, 1]))
    assert normalized_hypervolume(trials[3:], objs, bounds) == 0.0  # infeasible trials add nothing
