"""Writes handed off the training thread (src/callbacks/in_order.py): done in order, waited for, and a failure raised
on the training thread with its own error."""

import threading
import time

import pytest

from src.callbacks.in_order import InOrder
from src.core.atomic_io import WriteFailed


def test_writes_run_in_order_off_the_calling_thread() -> None:
    writes, threads = InOrder(), []
    done: list[int] = []
    for i in range(5):
        writes.submit(lambda i=i: (threads.append(threading.current_thread()), done.append(i)))
    writes.wait()
    assert done == [0, 1, 2, 3, 4]
    assert threading.current_thread() not in threads and len(set(threads)) == 1
    writes.close()


def test_a_failed_write_is_raised_at_the_next_wait_and_the_others_still_run() -> None:
    writes, done = InOrder(), []
    writes.submit(lambda: done.append(1))
    writes.submit(lambda: (_ for _ in ()).throw(WriteFailed("could not write grid.png: no space left", "free space")))
    writes.submit(lambda: done.append(3))
    with pytest.raises(WriteFailed, match="could not write grid.png"):
        writes.wait()
    assert done == [1, 3]
    writes.wait()  # reported once
    writes.close()


def test_a_failure_already_finished_is_raised_when_the_next_write_is_handed_over() -> None:
    writes, failed = InOrder(), threading.Event()

    def fail() -> None:
        failed.set()
        raise ZeroDivisionError

    writes.submit(fail)
    failed.wait(5)
    with pytest.raises(ZeroDivisionError):
        for _ in range(1000):  # the failing write may need a moment to be marked done after it raised
            writes.submit(lambda: time.sleep(0.001))
    writes.close()
