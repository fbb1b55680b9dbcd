"""The Optuna study behind a search: sampler, storage, and what a finished trial tells it.

The study lives in ``storage`` (default: SQLite in the sweep directory), so rerunning the same
command continues it: trials a killed sweep left running are marked failed and their
parameters queued again (their finished nodes are in the cache, so they cost little).
"""

from __future__ import annotations

from typing import Any, Literal

from malak_pipe.search.goals import Objective, Outcome

SamplerName = Literal["nsga2", "tpe", "random"]
INFEASIBLE_USER_ATTR = "state"
SENTINEL = 1e18  # objective value of a trial that stopped before its metrics existed


def startup_size(n_trials: int, population_size: int | None) -> int:
    """NSGA-II's generation size (and TPE's random start): ``population_size``, or a third of
    the trial budget within 4..50. Optuna's own default (50 for NSGA-II) is larger than a
    typical budget, and a search that never leaves its first, random generation is random
    search with extra steps."""
    return population_size or max(4, min(50, n_trials // 3))


def make_sampler(name: SamplerName, seed: int, startup: int) -> Any:
    """NSGA-II (generations of ``startup`` trials) or TPE (``startup`` random trials first), both
    ranking a trial with a violated constraint below every feasible one (the constraints are set
    on each trial, see :func:`tell`), or random search, the baseline."""
    import optuna

    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, startup))
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=startup)
    return optuna.samplers.RandomSampler(seed=seed)


def open_study(name: str, storage: str, objectives: list[Objective], sampler: Any) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=name,
        storage=storage,
        directions=[o.direction for o in objectives],
        sampler=sampler,
        load_if_exists=True,
    )


def recover_stale(study: Any) -> int:
    """Trials a killed sweep left RUNNING: failed, and their parameters queued again."""
    import optuna
    from optuna.trial import TrialState

    stale = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for trial in stale:
        optuna.trial.Trial(study, trial._trial_id).set_user_attr("stale", True)
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params, skip_if_exists=True)
    return len(stale)


def finished(study: Any) -> int:
    """Trials that count against the trial budget (complete, infeasible or pruned; errors too)."""
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(t.state in done and not t.user_attrs.get("stale") for t in study.get_trials(deepcopy=False))


def tell(study: Any, trial: Any, outcome: Outcome, objectives: list[Objective], info: dict[str, Any]) -> None:
    """Record ``outcome``: complete (feasible or not, with constraint violations), pruned, or failed."""
    from optuna.trial import TrialState

    for key, value in info.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr(INFEASIBLE_USER_ATTR, outcome.state)
    trial.set_user_attr("reason", outcome.reason)
    if outcome.state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
        return
    if outcome.state == "error":
        study.tell(trial, state=TrialState.FAIL)
        return
    trial.set_user_attr("violations", outcome.violations or [0.0])
    for index, violation in enumerate(outcome.violations):
        trial.set_constraint(f"constraint_{index}", violation)
    values = outcome.values if outcome.values else [_worst(o) for o in objectives]
    study.tell(trial, values)


def _worst(objective: Objective) -> float:
    """The value an infeasible trial without metrics reports (the constraints rank it anyway)."""
    return -SENTINEL if objective.direction == "maximize" else SENTINEL
