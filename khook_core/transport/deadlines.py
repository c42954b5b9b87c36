"""One watchdog thread per process that ends request-body reads past their deadline.

A request body must arrive within ``body_read_timeout`` seconds (``guard.DeadlineStream``); under
gunicorn a blocked read only ends when something shuts the socket's read side at the deadline.
A ``threading.Timer`` per request did that, but starting a thread on every request cost more
than the rest of the guard (the request waits until the new thread runs). Here one daemon thread
keeps every armed deadline in a heap and sleeps until the earliest: arming is a heap push under a
lock, disarming clears the entry (it is dropped when its time comes), so a finished request
leaves nothing reachable behind; the thread wakes at most every ``RESOLUTION_S``, so an action
runs up to that late.

Example::

    entry = WATCHDOG.arm(deadline, stream.expire)   # stream.expire() runs at the deadline
    ...                                              # read the body
    WATCHDOG.disarm(entry)                           # read in time: nothing runs
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Final

RESOLUTION_S: Final = 0.05
"""How late past its deadline an action may run."""
Entry = list[Any]
"""``[deadline, sequence, action or None]``: a list so that disarming can clear the action in
place; ordered by deadline, then arming order (actions are never compared)."""


class Watchdog:
    """Runs each armed action at its ``time.monotonic()`` deadline unless disarmed first."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[Entry] = []
        self._order = itertools.count()
        self._pid = 0  # the process whose thread runs; a forked worker starts its own
        # The parent's thread may hold the lock at the fork; the child gets a fresh one.
        this = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(this))

    def arm(self, deadline: float, action: Callable[[], None]) -> Entry:
        entry: Entry = [deadline, next(self._order), action]
        with self._cond:
            if self._pid != os.getpid():
                self._start()
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:  # earlier than the thread's wake-up: tell it
                self._cond.notify()
        return entry

    @staticmethod
    def disarm(entry: Entry) -> None:
        entry[2] = None  # a store of one reference: atomic, no lock needed

    def _forked(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap = []
        self._pid = 0

    def _start(self) -> None:
        self._pid = os.getpid()
        self._heap = []  # entries inherited through fork belong to the parent's requests
        threading.Thread(target=self._run, name="khook-body-deadlines", daemon=True).start()

    def _run(self) -> None:
        pid = os.getpid()
        while True:
            due: list[Callable[[], None]] = []
            with self._cond:
                if self._pid != pid:
                    return
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    action = heapq.heappop(self._heap)[2]
                    if action is not None:
                        due.append(action)
                if not due:
                    # Disarmed entries stay until their time: waking at most every
                    # RESOLUTION_S keeps a busy server's thread from waking for each of them.
                    wait = max(self._heap[0][0] - now, RESOLUTION_S) if self._heap else None
                    self._cond.wait(wait)
            for action in due:
                action()


def _after_fork(ref: weakref.ref[Watchdog]) -> None:
    watchdog = ref()
    if watchdog is not None:
        watchdog._forked()


WATCHDOG: Final = Watchdog()
"""The process's watchdog (functions-framework serves requests from several threads)."""
