"""The samplers leave their random start within the trial budget: NSGA-II is not random search."""

from __future__ import annotations

import pytest

from malak_pipe.search import study as studies


@pytest.mark.parametrize(("n_trials", "given", "expected"), [(12, None, 4), (40, None, 13), (600, None, 50),
                                                              (3, None, 4), (12, 6, 6)])
def test_startup_size_is_a_third_of_the_budget_within_bounds(n_trials, given, expected):
    assert studies.startup_size(n_trials, given) == expected


def _proposals(sampler_name: str, n_trials: int) -> list[tuple]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = studies.make_sampler(sampler_name, 0, studies.startup_size(n_trials, None))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    seen = []
    for _ in range(n_trials):
        trial = study.ask()
        width = trial.suggest_categorical("width", [0.125, 0.25, 0.375, 0.5, 0.75, 1.0])
        ratio = trial.suggest_categorical("ratio", [0.0, 0.25, 0.5])
        seen.append((width, ratio))
        study.tell(trial, [width * (1 - ratio), width * (1 - ratio) ** 2])
    return seen


@pytest.mark.parametrize("sampler_name", ["nsga2", "tpe"])
def test_a_guided_sampler_departs_from_random_search_within_a_small_budget(sampler_name):
    guided, random = _proposals(sampler_name, 12), _proposals("random", 12)
    assert guided[4:] != random[4:]
