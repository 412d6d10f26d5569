"""Writes a callback hands to one worker thread, done in the order given, so the training thread does not wait for
PNG encoding, the disk or a logger (encoding and file I/O release the GIL). A write that failed raises its error on
the training thread, at the next submit or wait."""

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class InOrder:
    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    def submit(self, write: Callable[[], None]) -> None:
        self._raise_finished_errors()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writes")
        self._pending.append(self._pool.submit(write))

    def wait(self, raise_errors: bool = True) -> None:
        """Until every write submitted so far is done; the first failure is raised (or dropped)."""
        pending, self._pending = self._pending, []
        errors = [f.exception() for f in pending]
        first = next((e for e in errors if e is not None), None)
        if first is not None and raise_errors:
            raise first

    def close(self) -> None:
        self.wait(raise_errors=False)
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _raise_finished_errors(self) -> None:
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        first = next((f.exception() for f in done if f.exception() is not None), None)
        if first is not None:
            raise first
