"""Progress bars for long work, kept at the edges of the library (a no-op when disabled)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


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
    total: float | None, description: str, enabled: bool = True, status: str = ""
) -> Iterator[Bar]:
    """Show a rich progress bar on stderr with a free-text `status` field (e.g. '2.31 bits/byte').

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
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    from rich.console import Console

    with Progress(*columns, console=Console(file=sys.stderr), transient=False) as progress:
        task_id = progress.add_task(description, total=total, status=status)
        yield Bar(progress, task_id)
