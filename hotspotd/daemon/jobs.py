"""The daemon's timetable: the poll, reconcile and presence on the monotonic clock (`Ticker`),
the roll-up and the nightly backup at times of the village's day (APScheduler).

Each job catches and logs its own failure: one bad run ends nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from hotspotd.daemon.service import Hotspotd

log = logging.getLogger("hotspotd")


def interval_jobs(daemon: Hotspotd) -> list[tuple[str, Callable[[], None], float]]:
    """The poll and the periodic reconcile, run by a `Ticker` on the monotonic clock."""
    return [
        ("poll", _guarded("poll", daemon.tick), float(daemon.cfg.daemon.poll_interval_s)),
        ("reconcile", _guarded("reconcile", daemon.reconcile), 60.0),
        ("presence", _guarded("presence", daemon.check_presence), 30.0),
    ]


def schedule(daemon: Hotspotd, scheduler: Any) -> None:
    """The jobs at times of the village's day (APScheduler, on the wall clock).

    Each catches and logs its own failure: one bad run ends nothing. When the clock jumps,
    `serve` reschedules them from the new time.
    """
    from apscheduler.triggers.cron import CronTrigger

    jobs: list[tuple[str, Callable[[], object], Any]] = [
        ("rollup", daemon.rollup, CronTrigger(minute=5, timezone=daemon.tz)),
    ]
    jobs.append(("backup", _backup_job(daemon), CronTrigger(hour=3, minute=17, timezone=daemon.tz)))
    for name, func, trigger in jobs:
        scheduler.add_job(
            _guarded(name, func),
            trigger,
            id=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=30,
        )


def reschedule_after_a_jump(scheduler: Any) -> None:
    """Next run times were reckoned on the old clock: a step back would hold them for hours."""
    for job in scheduler.get_jobs():
        job.reschedule(job.trigger)


class Ticker:
    """Runs jobs every so many seconds on the monotonic clock, so no wall-clock jump (a step
    back by NTP) can hold the poll; a late job runs once, not once per missed turn."""

    def __init__(
        self,
        jobs: Sequence[tuple[str, Callable[[], None], float]],
        monotonic: Callable[[], float],
    ) -> None:
        self.jobs = list(jobs)
        self.monotonic = monotonic
        self.thread: threading.Thread | None = None

    def run(self, stop: threading.Event) -> None:
        start = self.monotonic()
        due = {name: start + every for name, _f, every in self.jobs}
        while not stop.is_set():
            now = self.monotonic()
            for name, func, every in self.jobs:
                if due[name] <= now:
                    func()
                    due[name] = max(due[name] + every, self.monotonic())
            stop.wait(max(0.0, min(due.values()) - self.monotonic()))

    def start(self, stop: threading.Event) -> None:
        self.thread = threading.Thread(target=self.run, args=(stop,), name="ticker", daemon=True)
        self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()


def _guarded(name: str, func: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            func()
        except Exception:
            log.exception("job %s failed; it runs again at its next time", name)

    run.__name__ = f"job_{name}"
    return run


def _backup_job(daemon: Hotspotd) -> Callable[[], object]:
    """The nightly snapshot into the state folder, the oldest ones rotated out."""
    from hotspotd.backup.rotation import nightly

    def run() -> object:
        return nightly(daemon.cfg, daemon.clock.now())

    return run
