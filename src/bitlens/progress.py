"""Progress bars for long work, kept at the edges of the library (a no-op when disabled)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second, e.g. "1,234 tokens/s"."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None and task.elapsed:  # rich's own estimate needs two updates
            speed = task.completed / task.elapsed
        return Text("" if speed is None else f"{speed:,.0f} {self.unit}/s")


class Bar:
    """A handle to one progress bar: `advance(n, **fields)` moves it and updates its text fields."""

    def __init__(self, progress: Progress | None, task_id: TaskID | None) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, n: float = 1, **fields: object) -> None:
        if self._progress is not None and self._task_id is not None:
            self._progress.update(self._task_id, advance=n, **fields)  # type: ignore[arg-type]

    def set_description(self, text: str) -> None:
        if self._progress is not None and self._task_id is not None:
            self._progress.update(self._task_id, description=text)


@contextmanager
def progress_bar(
    total: float | None, description: str, enabled: bool = True, status: str = "", rate: str | None = None
) -> Iterator[Bar]:
    """Show a rich progress bar on stderr with a free-text `status` field (e.g. '2.31 bits/byte')
    and, with `rate` (a unit such as "tokens"), the speed in that unit per second.

    A disabled bar (enabled=False; callers pass show_progress()) costs nothing.
    """
    if not enabled:
        yield Bar(None, None)
        return
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        *([RateColumn(rate)] if rate else []),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    from rich.console import Console

    with Progress(*columns, console=Console(file=sys.stderr), transient=False) as progress:
        task_id = progress.add_task(description, total=total, status=status)
        yield Bar(progress, task_id)
