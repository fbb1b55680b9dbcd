"""The search loop: ask the study for trials, launch them as DAG runs, tell it what they gave.

Trials run through Hydra's launcher (joblib, SLURM via submitit, Ray), ``batch_size`` at a
time, each a normal ``malak-run`` job in ``<sweep dir>/<trial number>`` sharing the cache, so
nodes two trials have in common run once. The loop stops at ``n_trials`` finished trials
(counting earlier sessions of a resumed study) or after ``timeout_s``. Then the Pareto set is
measured on the test split (only the simulator node recomputes), and the report is written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from malak_pipe.errors import ConfigError
from malak_pipe.search import study as studies
from malak_pipe.search.front import TrialRecord, pareto_front, pick
from malak_pipe.search.goals import Constraint, Objective, judge, metric_value, parse_goals
from malak_pipe.search.report import reproduce_command, summarize, write_best, write_report
from malak_pipe.search.space import SearchSpace

REPORTED_METRICS = (
    "sim_run.top1",
    "sim_run.instructions_per_inference",
    "firmware_build.flash_bytes",
    "firmware_build.ram_bytes",
)


class PrunerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["median", "none"] = "median"
    report: list[str] = Field(default_factory=lambda: ["train", "qat", "distill"])
    warmup_steps: int = 1
    startup_trials: int = 4


class SearchSettings(BaseModel):
    """``hydra.sweeper`` of conf/hydra/sweeper/search.yaml, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sampler: studies.SamplerName = "tpe"
    seed: int = 0
    n_trials: PositiveInt = 20
    population_size: PositiveInt | None = None
    timeout_s: float | None = None
    batch_size: PositiveInt = 1
    storage: str | None = None
    study_name: str = "search"
    objectives: list[dict[str, Any]] = Field(default_factory=list)
    constraints: list[dict[str, Any]] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    pruner: PrunerSettings = Field(default_factory=PrunerSettings)
    trial_overrides: list[str] = Field(default_factory=lambda: ["stage.sim_run.split=val"])
    test_overrides: list[str] = Field(default_factory=lambda: ["stage.sim_run.split=test"])
    prefer: str | None = None


def parse_settings(raw: dict[str, Any]) -> SearchSettings:
    try:
        return SearchSettings.model_validate(raw)
    except ValueError as exc:
        raise ConfigError(f"invalid search settings: {exc}", path="hydra.sweeper") from None


class SearchDriver:
    """One session of a search over ``launch`` (Hydra's launcher) in ``sweep_dir``."""

    def __init__(self, settings: SearchSettings, launcher: Any, sweep_dir: Path, arguments: list[str]):
        self.settings = settings
        self.launcher = launcher
        self.sweep_dir = sweep_dir.resolve()
        self.base = [a for a in arguments if not a.startswith("hydra/sweeper=")]
        self.space = SearchSpace(settings.params)
        self.objectives, self.constraints = parse_goals(settings.objectives, settings.constraints)
        self.storage = settings.storage or f"sqlite:///{self.sweep_dir / 'study.db'}"
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        startup = studies.startup_size(settings.n_trials, settings.population_size)
        sampler = studies.make_sampler(settings.sampler, settings.seed, startup)
        self.study = studies.open_study(settings.study_name, self.storage, self.objectives, sampler)

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict[str, Any]:
        studies.recover_stale(self.study)
        started = time.monotonic()
        while (done := studies.finished(self.study)) < self.settings.n_trials:
            if self.settings.timeout_s is not None and time.monotonic() - started > self.settings.timeout_s:
                break
            self._batch(min(self.settings.batch_size, self.settings.n_trials - done))
        return self.finish()

    def _batch(self, size: int) -> None:
        trials, jobs = [], []
        for _ in range(size):
            trial = self.study.ask()
            _, overrides = self.space.suggest(trial)
            trials.append((trial, overrides))
            jobs.append([*self.base, *self.settings.trial_overrides, *overrides, self._trial_override(trial)])
        returns = self.launcher.launch(jobs, initial_job_idx=trials[0][0].number)
        for (trial, overrides), ret in zip(trials, returns, strict=True):
            run_dir = Path(str(ret.hydra_cfg.hydra.runtime.output_dir))
            nodes = _read_nodes(run_dir)
            outcome = judge(nodes, self.objectives, self.constraints)
            metrics = {m: metric_value(nodes, m) for m in self._reported()}
            info = {"run_dir": str(run_dir), "overrides": overrides, "metrics": metrics}
            studies.tell(self.study, trial, outcome, self.objectives, info)

    def _trial_override(self, trial: Any) -> str:
        """``run.trial={...}``: who the run is, and the pruning rule its training nodes apply."""
        pruner = self.settings.pruner
        spec = (
            f"storage:'{self.storage}',study:'{self.settings.study_name}',trial_id:{trial._trial_id},"
            f"number:{trial.number},report:[{','.join(pruner.report)}],pruner:{pruner.name},"
            f"warmup_steps:{pruner.warmup_steps},startup_trials:{pruner.startup_trials}"
        )
        return f"run.trial={{{spec}}}"

    def _reported(self) -> list[str]:
        names = [o.metric for o in self.objectives] + [c.metric for c in self.constraints] + list(REPORTED_METRICS)
        return list(dict.fromkeys(names))

    # ---------------------------------------------------------------- the end
    def records(self) -> list[TrialRecord]:
        from optuna.trial import TrialState

        found = []
        for t in self.study.get_trials(deepcopy=False):
            if t.state == TrialState.RUNNING or (t.state == TrialState.FAIL and "state" not in t.user_attrs):
                continue
            state = t.user_attrs.get("state", "error")
            violations = t.user_attrs.get("violations", [1.0])
            feasible = state == "complete" and all(v == 0 for v in violations)
            found.append(TrialRecord(
                number=t.number, state=state, params=dict(t.params), values=list(t.values or []),
                feasible=feasible, reason=t.user_attrs.get("reason", ""),
                metrics={k: v for k, v in t.user_attrs.get("metrics", {}).items() if v is not None},
                run_dir=t.user_attrs.get("run_dir", ""), overrides=t.user_attrs.get("overrides", []),
            ))
        return found

    def _test_figures(self, front: list[TrialRecord]) -> dict[int, dict[str, Any]]:
        """The Pareto set on the test split (reported, never used to choose): one job per
        trial, in ``<sweep dir>/test-<trial number>``; only the simulator node recomputes."""
        figures = {}
        for trial in front if self.settings.test_overrides else []:
            job = [*self.base, *self.settings.trial_overrides, *trial.overrides, *self.settings.test_overrides,
                   "hydra.sweep.subdir=test-${hydra.job.num}"]
            [ret] = self.launcher.launch([job], initial_job_idx=trial.number)
            nodes = _read_nodes(Path(str(ret.hydra_cfg.hydra.runtime.output_dir)))
            sim = nodes.get("sim_run", {}).get("metrics", {})
            build = nodes.get("firmware_build", {}).get("metrics", {})
            figures[trial.number] = {
                "test_top1_on_target": sim.get("top1"),
                "golden_test_top1": sim.get("golden_top1"),
                "bit_exact_rate": sim.get("bit_exact_rate"),
                "instructions_per_inference": sim.get("instructions_per_inference"),
                "flash_bytes": build.get("flash_bytes"),
                "ram_bytes": build.get("ram_bytes"),
            }
        return figures

    def finish(self) -> dict[str, Any]:
        trials = self.records()
        front = pareto_front(trials, self.objectives)
        tests = self._test_figures(front)
        for trial in front:
            trial.metrics.update({f"test.{k}": v for k, v in tests.get(trial.number, {}).items() if v is not None})
        best = pick(front, self.objectives, self.settings.prefer)
        out_dir = self.sweep_dir / "report"
        reproduce = "no feasible trial"
        if best is not None:
            ran_with = [*self.base, *self.settings.trial_overrides, *best.overrides]
            _, extra = write_best(out_dir, ran_with, best, self.settings.study_name, *_config_groups())
            reproduce = reproduce_command(out_dir, extra)
        summary = summarize(self.settings.study_name, trials, front, self.objectives, best,
                            tests.get(best.number, {}) if best else {}, reproduce)
        write_report(out_dir, summary, trials, front, self.objectives)
        return summary


def _config_groups() -> tuple[set[str], set[str]]:
    """The top-level config groups of malak-pipe's conf/ (data, model, pipeline, ...), and the
    overlays: those the primary config's defaults list applies after the experiment (debug)."""
    from importlib.resources import files

    import yaml

    conf = files("malak_pipe.conf")
    groups = {entry.name for entry in conf.iterdir() if entry.is_dir() and not entry.name.startswith("_")}
    defaults = yaml.safe_load((conf / "config.yaml").read_text()).get("defaults", [])
    names = [next(iter(item)).replace("optional ", "") for item in defaults if isinstance(item, dict)]
    overlays = set(names[names.index("experiment") + 1 :]) if "experiment" in names else set()
    return groups, overlays


def _read_nodes(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "results.json").read_text())["nodes"]
    except (OSError, ValueError, KeyError):
        return {}


__all__ = ["Constraint", "Objective", "SearchDriver", "SearchSettings", "parse_settings"]
