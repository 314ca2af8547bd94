"""How the CLI speaks: rich tables for people, JSON for scripts, one-line errors on stderr.

Every command writes through :class:`Output`, so ``--json`` means the same thing
everywhere: exactly one JSON document on stdout and nothing else. Long work draws a
progress bar on stderr when stderr is a terminal (rich's detection, so ``FORCE_COLOR`` /
``TTY_COMPATIBLE`` apply) and nothing at all in pipes, so scripts never parse a bar.
"""

from __future__ import annotations

import base64
import functools
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lash.codec import to_plain
from lash.errors import LashError
from lash.model import LedgerEntry, TokenUsage

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


USAGE_COLUMNS = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cache read", "cache_read_input_tokens"),
    ("cache write", "cache_write_input_tokens"),
    ("reasoning", "reasoning_output_tokens"),
)

PIPE_WIDTH = 240
"""Console width when stdout is not a terminal."""


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: records unstructured, bytes as ``{"base64": ...}``."""
    value = to_plain(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return {"base64": base64.b64encode(value).decode("ascii")}
    return value


def human_bytes(size: int) -> str:
    """``1536`` → ``1.5 KiB``."""
    if size < 1024:
        return f"{size} B"
    amount = size / 1024
    for unit in ("KiB", "MiB"):
        if amount < 1024:
            return f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


def one_line(text: object, limit: int = 72) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class Ticker:
    """One running progress bar; every call is a no-op when nothing is drawn (pipes)."""

    def __init__(self, progress: Progress | None = None, task: TaskID | None = None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, steps: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, steps)

    def describe(self, text: str, *, total: int | None = None) -> None:
        """Show ``text`` (and a new ``total``, when the next stage counts something else)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=text, total=total, completed=0)


class Output:
    """The destination of one command's output, human or ``--json``."""

    def __init__(self, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.interactive = sys.stdout.isatty()

    @functools.cached_property
    def console(self) -> Console:
        """Built on first use, so ``--json`` output never imports rich's renderers."""
        try:
            from rich.console import Console
        except ImportError as exc:
            raise LashError("human-readable output needs rich: pip install 'lash[cli]' (or pass --json)") from exc
        # In a pipe nothing wraps: rows stay whole lines for grep and friends.
        piped = not self.interactive
        return Console(highlight=False, soft_wrap=piped, width=PIPE_WIDTH if piped else None)

    @functools.cached_property
    def status_console(self) -> Console | None:
        """A console on stderr if it is a terminal (where progress is drawn), else None."""
        try:
            from rich.console import Console
        except ImportError:  # no rich, no bars; the command still works
            return None
        console = Console(stderr=True)
        return console if console.is_terminal else None

    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Ticker]:
        """A transient progress bar on stderr while the block runs (a pulsing one if ``total`` is None)."""
        console = self.status_console
        if console is None:
            yield Ticker()
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        counter = () if total is None else (MofNCompleteColumn(),)  # no total: a pulsing bar
        columns = (TextColumn("{task.description}"), BarColumn(), *counter, TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            yield Ticker(progress, progress.add_task(description, total=total))

    def json(self, data: Any) -> None:
        """Write ``data`` as the command's single JSON document."""
        sys.stdout.write(json.dumps(jsonable(data), indent=2, ensure_ascii=False) + "\n")

    def line(self, text: str = "", *, style: str | None = None) -> None:
        self.console.print(text, style=style, markup=False)

    def markup(self, text: str) -> None:
        """A line with rich markup (``[bold]`` …); only for text the CLI wrote itself."""
        self.console.print(text)

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> None:
        console = self.console
        from rich.box import SIMPLE_HEAD
        from rich.table import Table

        table = Table(
            *columns,
            title=title,
            title_justify="left",
            box=SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            collapse_padding=True,
        )
        for row in rows:
            table.add_row(*("" if cell is None else str(cell) for cell in row))
        console.print(table)

    def usage_table(self, entries: Sequence[LedgerEntry], *, title: str | None = None) -> None:
        """Usage per (source, model) with a total row; counters that are zero everywhere are left out."""
        total = sum((e.usage for e in entries), TokenUsage())
        counters = [
            (header, name)
            for header, name in USAGE_COLUMNS
            if name in ("input_tokens", "output_tokens") or getattr(total, name)
        ]
        rows = (
            [e.source, e.model, *(f"{getattr(e.usage, n):,}" for _, n in counters), f"{e.usage.total:,}"]
            for e in [*entries, LedgerEntry("total", "", total)]
        )
        self.table(["source", "model", *(header for header, _ in counters), "total"], rows, title=title)

    def fields(self, pairs: Iterable[tuple[str, Any]]) -> None:
        """An aligned ``key  value`` block."""
        pairs = list(pairs)
        width = max((len(k) for k, _ in pairs), default=0)
        for key, value in pairs:
            self.console.print(f"{key:<{width}}  {value}", markup=False)


def error(message: str) -> None:
    """The one stderr line a failed command prints."""
    sys.stderr.write(f"lash: error: {' '.join(message.split())}\n")
