"""Slowing down voucher guessing: wrong codes per device and for the whole hotspot.

A sliding window of wrong codes (typos count: a guesser's random codes are mostly typos). A
device with `per_device` wrong codes in the window is refused until the oldest of them leaves
the window. The hotspot as a whole with `overall` wrong codes in the window is *being guessed
at* (a guesser who changes MAC and address for every try): then a wrong code is answered
"wait", but a well-formed valid code still logs in (and is audited): ten neighbours' typos
must never lock every resident out.

Pure: the caller passes `now` (seconds, any monotonic scale) and owns the one instance. It lives
in the daemon, the one process that sees every login of every portal worker.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ThrottlePolicy:
    per_device: int = 5
    overall: int = 50
    window_s: float = 600.0
    max_devices: int = 10_000  # memory bound: beyond it the stalest device is forgotten


@dataclass
class GuessThrottle:
    policy: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    _devices: dict[str, deque[float]] = field(default_factory=dict)
    _overall: deque[float] = field(default_factory=deque)

    def _trim(self, misses: deque[float], now: float) -> None:
        while misses and misses[0] <= now - self.policy.window_s:
            misses.popleft()

    def guessing(self, now: float) -> int:
        """Seconds until the hotspot as a whole is below its wrong-code limit; 0 when it is."""
        self._trim(self._overall, now)
        if len(self._overall) < self.policy.overall:
            return 0
        wait = self._overall[-self.policy.overall] + self.policy.window_s - now
        return max(0, math.ceil(wait))

    def retry_after(self, device: str, now: float) -> int:
        """Seconds this device must wait before trying a code; 0 when it may try now."""
        waits = [0.0]
        mine = self._devices.get(device)
        if mine is not None:
            self._trim(mine, now)
            if not mine:
                del self._devices[device]
            elif len(mine) >= self.policy.per_device:
                waits.append(mine[-self.policy.per_device] + self.policy.window_s - now)
        return max(0, math.ceil(max(waits)))

    def miss(self, device: str, now: float) -> None:
        """Count one wrong code from this device."""
        self._overall.append(now)
        while len(self._overall) > self.policy.overall:
            self._overall.popleft()
        mine = self._devices.pop(device, None) or deque(maxlen=self.policy.per_device)
        mine.append(now)
        self._devices[device] = mine  # re-inserted: dict order is least recently missed first
        while len(self._devices) > self.policy.max_devices:
            del self._devices[next(iter(self._devices))]

    def misses(self, device: str, now: float) -> int:
        mine = self._devices.get(device)
        if mine is None:
            return 0
        self._trim(mine, now)
        return len(mine)
