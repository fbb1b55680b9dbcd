"""A trial's training nodes report each epoch's val top-1 and stop below the others' median."""

from __future__ import annotations

import contextlib

import optuna
import pytest

from malak_pipe.errors import TrialPruned
from malak_pipe.search.trial_events import TrialEvents, TrialSpec, step_key


class Console:
    def __init__(self):
        self.seen = []

    @contextlib.contextmanager
    def progress(self, node, total, description):
        seen = self.seen

        class Bar:
            def advance(self, steps=1, **fields):
                seen.append((node, steps, fields))

        yield Bar()

    def warn(self, message):
        self.seen.append(("warn", message))


def study_with_others(tmp_path, values):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=storage, directions=["maximize", "minimize"])
    for value in values:
        other = study.ask()
        other.set_user_attr(step_key(2), value)
        study.tell(other, [value, 1.0])
    return storage, study


def spec(storage, trial, **extra):
    return TrialSpec(storage=storage, study="s", trial_id=trial._trial_id, number=trial.number,
                     report=["train", "qat"], **extra)


def test_below_the_median_stops_with_trial_pruned(tmp_path):
    storage, study = study_with_others(tmp_path, [0.8, 0.85, 0.9, 0.95])
    trial = study.ask()
    console = Console()
    events = TrialEvents(console, spec(storage, trial, startup_trials=4))
    with events.progress("train", 10, "train") as bar:
        bar.advance(1)  # batches pass through
        bar.advance(0, epoch=1, val_top1=0.1)  # warm-up epoch: never stops
        with pytest.raises(TrialPruned, match="below the median 0.8750"):
            bar.advance(0, epoch=2, val_top1=0.5)
    assert console.seen[0] == ("train", 1, {})
    stored = optuna.load_study(study_name="s", storage=storage).trials[trial.number].user_attrs
    assert stored[step_key(2)] == 0.5 and stored[step_key(1)] == 0.1


def test_above_the_median_or_too_few_others_or_other_nodes_go_on(tmp_path):
    storage, study = study_with_others(tmp_path, [0.8, 0.85, 0.9, 0.95])
    trial = study.ask()
    events = TrialEvents(Console(), spec(storage, trial, startup_trials=4))
    with events.progress("train", 10, "train") as bar:
        bar.advance(0, epoch=2, val_top1=0.9)
    with events.progress("qat", 10, "qat") as bar:  # another node: another step (1002)
        bar.advance(0, epoch=2, val_top1=0.1)
    with events.progress("export_onnx", None, "export") as bar:  # not reported at all
        bar.advance(0, epoch=2, val_top1=0.0)
    few = TrialEvents(Console(), spec(storage, study.ask(), startup_trials=10))
    with few.progress("train", 10, "train") as bar:
        bar.advance(0, epoch=2, val_top1=0.0)
    off = TrialEvents(Console(), spec(storage, study.ask(), pruner="none"))
    with off.progress("train", 10, "train") as bar:
        bar.advance(0, epoch=2, val_top1=0.0)
