"""The project's error classes.

User mistakes raise a :class:`MalakError` subclass whose message names the config path or
file and what to do. The CLI prints it without a traceback and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path


class MalakError(Exception):
    """Base class of every error a user can fix (bad config, missing data, bad file)."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None):
        self.path = path
        self.hint = hint
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.path}: " if self.path else ""
        fix = f"\n  fix: {self.hint}" if self.hint else ""
        return f"{where}{self.message}{fix}"


class ConfigError(MalakError):
    """The composed config is invalid (wrong type, unknown stage, bad wiring, cycle...)."""


class DataError(MalakError):
    """A dataset or input file is missing, unreadable or of the wrong shape."""


class ArtifactError(MalakError):
    """An artifact file is not what its type says (not ONNX, not a checkpoint...)."""


class StageFailed(MalakError):
    """A stage ran and failed for a reason the user can act on (NaN loss, bad input...).

    ``status`` is the node's status in result.json: ``failed`` here, ``infeasible`` or
    ``pruned`` for the subclasses a search tells apart."""

    status = "failed"


class BudgetExceeded(StageFailed):
    """The model does not fit the target (flash, RAM, time): a fact about the candidate, so a
    search records the trial as infeasible instead of an error."""

    status = "infeasible"


class TrialPruned(StageFailed):
    """A search stopped this trial early: its validation accuracy fell behind the others'."""

    status = "pruned"


class DiskFull(MalakError):
    """No space was left on the device while writing a file; nothing half-written was kept."""

    exit_code = 1

    @classmethod
    def at(cls, path: Path, needed: int | None = None) -> DiskFull:
        import shutil

        probe = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
        free = shutil.disk_usage(probe).free
        need = f", about {needed:,} bytes needed" if needed else ""
        return cls(
            f"no space left on the device ({free:,} bytes free{need}); nothing half-written was kept",
            path=str(path),
            hint="free some space (malak-cache gc removes old cache entries) or point cache.dir / the run "
            "directory at a larger disk, then rerun: what was complete is reused",
        )


class StageSkipped(Exception):
    """Raised by a stage that cannot run on this machine (a tool is missing); carries the reason.

    Under CI=true the runner turns a skip caused by a missing tool into a failure, so CI
    always exercises the firmware path.
    """

    def __init__(self, reason: str, *, missing_tool: bool = False):
        self.reason = reason
        self.missing_tool = missing_tool
        super().__init__(reason)
