"""A search trial's run reports each epoch's validation accuracy to its Optuna trial.

The sweeper launches each trial with ``run.trial={storage, study, trial_id, report}``;
``malak-run`` then wraps its console in :class:`TrialEvents`. Training stages report
``progress.advance(0, epoch=k, val_top1=v)`` after each epoch; for the nodes named in
``report`` the value is stored on the trial at step ``1000 * (node's index in report) +
epoch`` (so the same node and epoch are compared across trials, whichever nodes were cached).

Optuna's own pruners are single-objective (``Trial.report`` refuses multi-objective studies),
so the rule is applied here: the median rule — after ``warmup_steps`` epochs of a node, and
once ``startup_trials`` other trials have a value at the same step, a trial below their
median stops with :class:`TrialPruned` (recorded as pruned, the run exits 0).
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from malak_pipe.errors import TrialPruned
from malak_pipe.stage import Progress

STEPS_PER_NODE = 1000


class TrialSpec(BaseModel):
    """Which study trial a run is, and which nodes report their per-epoch val top-1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    storage: str
    study: str
    trial_id: int
    number: int = 0
    report: list[str] = Field(default_factory=list)
    pruner: Literal["median", "none"] = "median"
    warmup_steps: int = 1
    startup_trials: int = 4


def step_key(step: int) -> str:
    return f"val_top1@{step}"


class _Reporter:
    def __init__(self, spec: TrialSpec):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.load_study(study_name=spec.study, storage=spec.storage)
        self.trial = optuna.trial.Trial(self.study, spec.trial_id)
        self.spec = spec

    def epoch(self, node: str, epoch: int, value: float) -> None:
        key = step_key(STEPS_PER_NODE * self.spec.report.index(node) + epoch)
        self.trial.set_user_attr(key, value)
        if self.spec.pruner == "none" or epoch <= self.spec.warmup_steps:
            return
        others = [t.user_attrs.get(key) for t in self.study.get_trials(deepcopy=False) if t.number != self.spec.number]
        others = [v for v in others if isinstance(v, int | float)]
        if len(others) >= self.spec.startup_trials and value < statistics.median(others):
            raise TrialPruned(
                f"search trial {self.spec.number} stopped at {node} epoch {epoch}: val top-1 {value:.4f} is below "
                f"the median {statistics.median(others):.4f} of {len(others)} other trials at this point",
                hint="pruned trials are recorded as such; hydra.sweeper.pruner.name=none trains every trial fully",
            )


class _ReportingProgress:
    def __init__(self, inner: Progress, node: str, reporter: _Reporter):
        self.inner, self.node, self.reporter = inner, node, reporter

    def advance(self, steps: int = 1, **fields: Any) -> None:
        self.inner.advance(steps, **fields)
        value, epoch = fields.get("val_top1"), fields.get("epoch")
        if isinstance(value, int | float) and isinstance(epoch, int):
            self.reporter.epoch(self.node, epoch, float(value))


class TrialEvents:
    """A RunEvents that forwards everything to ``inner`` and reports epochs of the chosen nodes."""

    def __init__(self, inner: Any, spec: TrialSpec):
        self.inner = inner
        self.spec = spec
        self._reporter: _Reporter | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextlib.contextmanager
    def progress(self, node: str, total: int | None, description: str) -> Iterator[Progress]:
        with self.inner.progress(node, total, description) as bar:
            if node not in self.spec.report:
                yield bar
                return
            if self._reporter is None:
                self._reporter = _Reporter(self.spec)
            yield _ReportingProgress(bar, node, self._reporter)
