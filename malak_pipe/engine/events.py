"""What the engine reports while it runs, as a protocol the command line's console implements.

The engine never prints: the runner, the stage context and the app call these methods, and
``malak-run`` passes its rich console (malak_pipe.cli.console.RunConsole). Code that runs a
pipeline from Python without a console gets :class:`SilentEvents`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from malak_pipe.stage import Progress, Stage


class RunEvents(Protocol):
    """Receives the life of one run: its nodes, their progress and the final tables."""

    def session(self, nodes: dict[str, type[Stage]]) -> AbstractContextManager[Any]:
        """The run of these nodes (name -> stage class) begins; it ends with the block."""

    def node_started(self, name: str) -> None: ...

    def node_finished(self, name: str, status: str, seconds: float, metrics: dict[str, Any], note: str = "") -> None:
        """A node ended ``ok``, ``cached``, ``skipped`` or ``failed``; ``note`` says why when not ok."""

    def log(self, node: str, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def progress(self, node: str, total: int | None, description: str) -> AbstractContextManager[Progress]: ...

    def plan(self, rows: list[tuple[str, ...]]) -> None:
        """The plan of a ``run.plan=true`` invocation: one row per node."""

    def summary(self, results: dict[str, Any], run_dir: str) -> None:
        """The NodeResult of every node, after the run."""


class _NoProgress:
    def advance(self, steps: int = 1, **fields: Any) -> None:
        pass


class SilentEvents:
    """A :class:`RunEvents` that prints nothing (runs from Python, tests); warnings go to the
    ``malak_pipe`` logger."""

    @contextlib.contextmanager
    def session(self, nodes: dict[str, type[Stage]]) -> Iterator[SilentEvents]:
        yield self

    def node_started(self, name: str) -> None:
        pass

    def node_finished(self, name: str, status: str, seconds: float, metrics: dict[str, Any], note: str = "") -> None:
        pass

    def log(self, node: str, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        logging.getLogger("malak_pipe").warning(message)

    @contextlib.contextmanager
    def progress(self, node: str, total: int | None, description: str) -> Iterator[Progress]:
        yield _NoProgress()

    def plan(self, rows: list[tuple[str, ...]]) -> None:
        pass

    def summary(self, results: dict[str, Any], run_dir: str) -> None:
        pass
