"""Progress of the slow steps (synthetic generation, feature extraction, the unit loop), for
a user who waits: a tqdm bar on a terminal, and where no terminal watches (CI, ``nohup``,
a redirected log) a plain line every ``every_s`` seconds and one at the end.

tqdm draws the bar; written here is only what tqdm has no mode for: the plain periodic
lines a log file can show, from the same counts.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO, TypeVar

T = TypeVar("T")

#: seconds between two plain lines when no terminal watches
EVERY_S = 10.0


def clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on)."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """``done`` of ``total`` items of one step, the time spent and the time left at the mean
    pace so far (with ``parallel`` items at a time: see :meth:`time_left`).

    Args:
        total: items the step has.
        desc: what the step is, e.g. ``"modma: features"``.
        unit: what an item is, plural (``"utterances"``, ``"files"``, ``"units"``).
        enabled: ``False`` shows nothing (``--quiet``).
        stream: where it shows (default ``sys.stderr``); a bar when it is a terminal.
        every_s: seconds between two plain lines (no terminal).
        log_lines: ``False`` where the caller writes its own line per item (the unit loop):
            then only a terminal shows anything (the bar).
        parallel: items under way at once (the unit loop's worker processes); may be set
            later, when known.

    Example::

        with Progress(len(files), "casia: features", unit="utterances") as bar:
            for f in bar.track(files, lambda: {"skipped": len(skipped)}):
                ...
    """

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        unit: str = "items",
        enabled: bool = True,
        stream: TextIO | None = None,
        every_s: float = EVERY_S,
        log_lines: bool = True,
        parallel: int = 1,
    ) -> None:
        self.total, self.desc, self.unit, self.every_s = int(total), desc, unit, every_s
        self.parallel = parallel
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.log_lines = log_lines
        self.done = 0
        self.finished: list[float] = []  # when each item was done (time.monotonic)
        self.extra: dict[str, Any] = {}
        self.start = self.last_line = time.monotonic()
        self.bar = None
        if enabled and _is_terminal(self.stream):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=desc, unit=f" {unit}", file=self.stream, dynamic_ncols=True)

    def update(self, n: int = 1, **extra: Any) -> None:
        """``n`` more items done; ``extra`` (e.g. ``skipped=3``) is shown beside the counts."""
        self.done += n
        self.finished += [time.monotonic()] * n
        self.extra.update(extra)
        if self.bar is not None:
            if extra:
                self.bar.set_postfix(extra, refresh=False)
            self.bar.update(n)
        elif self.enabled and self.log_lines and time.monotonic() - self.last_line >= self.every_s and self.done < self.total:
            self._print(self.line())

    def track(self, items: Iterable[T], extra: Callable[[], dict[str, Any]] | None = None) -> Iterator[T]:
        """``items``, counted as each one is done (when the next is asked for, so a loop's
        ``continue`` counts too); ``extra()`` gives the values shown beside the counts.
        Closes the progress when the loop ends, however it ends."""
        try:
            for item in items:
                yield item
                self.update(**(extra() if extra else {}))
        finally:
            self.close()

    def line(self) -> str:
        """``desc: done/total unit (pct), rate/s, m:ss spent, about m:ss left[, extra]``."""
        spent = time.monotonic() - self.start
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        parts = [f"{self.desc}: {self.done}/{self.total} {self.unit}{pct}"]
        if spent > 0 and self.done:  # as tqdm: items per second, or seconds per item when slower
            rate = self.done / spent
            parts.append(f"{rate:.1f} {self.unit}/s" if rate >= 1 else f"{1 / rate:.1f} s each")
        parts.append(f"{clock(spent)} spent")
        if self.done < self.total:
            left = self.time_left()
            parts.append(f"about {clock(left)} left" if left is not None else "time left unknown")
        parts += [f"{key} {value}" for key, value in self.extra.items()]
        return ", ".join(parts)

    def time_left(self) -> float | None:
        """The items left times the mean time an item took, over the ``parallel`` items under
        way at once; None before the first is done. Item k (in the order they finished) is
        taken to have started when item k - ``parallel`` finished, the first ``parallel`` at
        the start: a worker takes the next item as it finishes one. Dividing the time spent
        by the items done instead would count, after the first of two units running
        together, the whole run of that unit for one unit of progress (twice the time left)."""
        if not self.finished:
            return None
        started = [self.start] * self.parallel + self.finished
        took = [end - begin for end, begin in zip(self.finished, started)]
        return sum(took) / len(took) * (self.total - self.done) / self.parallel

    def above(self, say: Callable[..., Any]) -> Callable[..., Any]:
        """``say`` that prints above the bar instead of through it (the bar is redrawn after)."""
        if self.bar is None:
            return say

        def write(*args: Any, **kwargs: Any) -> Any:
            with self.bar.external_write_mode():
                return say(*args, **kwargs)

        return write

    def close(self) -> None:
        """The last line (no terminal) or the bar left at its final counts (terminal)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.enabled and self.log_lines:
            self._print(self.line())
        self.enabled = False

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
        self.last_line = time.monotonic()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    """A terminal with a width: a pseudo-terminal of no size (``script`` or ``ssh`` without
    a terminal of their own) gets the plain lines, on which tqdm would draw empty bars."""
    try:
        if not stream.isatty():
            return False
    except (AttributeError, ValueError):  # a closed or stream-like object
        return False
    try:
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (OSError, ValueError):  # no file descriptor (a test's stand-in): trust isatty
        return True


def progress_bar(iterable: Any, *, total: int, desc: str, enabled: bool) -> Any:
    """``iterable`` behind a transient tqdm bar on a terminal (the per-epoch batches: too
    short-lived for plain lines, which the unit loop writes instead); else ``iterable``."""
    if not (enabled and _is_terminal(sys.stderr)):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)
