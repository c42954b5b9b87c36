"""The body-deadline watchdog: one thread a process runs armed actions at their deadline."""

from __future__ import annotations

import os
import select
import signal
import threading
import time

from khook_core.transport.deadlines import Watchdog

WAIT_S = 10.0  # generous: only bounds a failing test, never measured


def test_an_armed_action_runs_once_its_deadline_passes() -> None:
    watchdog = Watchdog()
    ran = threading.Event()
    armed_at = time.monotonic()
    watchdog.arm(armed_at + 0.05, ran.set)
    assert ran.wait(WAIT_S)
    assert time.monotonic() >= armed_at + 0.05


def test_a_disarmed_action_never_runs() -> None:
    watchdog = Watchdog()
    ran: list[str] = []
    done = threading.Event()
    now = time.monotonic()
    watchdog.disarm(watchdog.arm(now + 0.05, lambda: ran.append("disarmed")))
    watchdog.arm(now + 0.1, done.set)  # runs after the disarmed one's deadline
    assert done.wait(WAIT_S)
    assert ran == []


def test_an_earlier_deadline_armed_later_wakes_the_thread() -> None:
    """The thread sleeps until the earliest deadline; a new, earlier one must not wait for it."""
    watchdog = Watchdog()
    order: list[str] = []
    early = threading.Event()
    now = time.monotonic()

    def first() -> None:
        order.append("early")
        early.set()

    watchdog.arm(now + 3600, lambda: order.append("late"))
    time.sleep(0.05)  # the thread is now asleep until the late deadline
    watchdog.arm(now + 0.05, first)
    assert early.wait(WAIT_S)
    assert order == ["early"]


def test_a_forked_worker_runs_its_own_deadlines() -> None:
    """gunicorn forks its workers: the parent's thread does not exist in the child."""
    watchdog = Watchdog()
    watchdog.disarm(watchdog.arm(time.monotonic() + 3600, lambda: None))  # parent's thread
    read, write = os.pipe()
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # another of the parent's threads holds the lock at the fork
        with watchdog._cond:
            held.set()
            release.wait(WAIT_S)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(WAIT_S)
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its own deadline ran
        os.close(read)
        fired = threading.Event()
        watchdog.arm(time.monotonic() + 0.05, fired.set)
        os.write(write, b"1" if fired.wait(WAIT_S) else b"0")
        os._exit(0)
    release.set()
    holder.join(WAIT_S)
    os.close(write)
    answered: list[int] = []
    try:
        answered, _, _ = select.select([read], [], [], WAIT_S)
        assert answered, "the forked worker hung on the lock it inherited"
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        if not answered:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
