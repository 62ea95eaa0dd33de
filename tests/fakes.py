"""In-memory `Firewall` and `Shaper` for unit tests; they record what they were asked.

And `FakeClock`, the one clock a test hands to the daemon, the portal and the CLI alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from ipaddress import IPv4Address

from hotspotd.core.ports import (
    Counters,
    DeviceKey,
    FirewallChange,
    FirewallState,
    Rate,
    ShaperChange,
)


class FakeFirewall:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.is_set_up = False
        self._state = FirewallState()
        self._counters: dict[DeviceKey, Counters] = {}

    def setup(self) -> None:
        self.calls.append(("setup", None))
        self.is_set_up = True

    def teardown(self) -> None:
        self.calls.append(("teardown", None))
        self.is_set_up = False
        self._state = FirewallState()
        self._counters.clear()

    def state(self) -> FirewallState:
        return self._state

    def apply(self, change: FirewallChange) -> None:
        if not self.is_set_up:
            raise RuntimeError("apply() before setup()")
        self.calls.append(("apply", change))
        s = self._state
        self._state = replace(
            s,
            authorized=(s.authorized - change.deauthorize) | change.authorize,
            trusted=(s.trusted - change.untrust) | change.trust,
            blocked=(s.blocked - change.unblock) | change.block,
            garden=(s.garden - change.garden_remove) | change.garden_add,
        )
        for key in change.deauthorize:
            self._counters.pop(key, None)
        for key in change.authorize:
            self._counters.setdefault(key, Counters())

    def counters(self) -> Mapping[DeviceKey, Counters]:
        return dict(self._counters)

    def add_traffic(self, key: DeviceKey, up: int, down: int) -> None:
        """Test helper: pretend the device moved bytes."""
        c = self._counters[key]
        self._counters[key] = Counters(c.bytes_up + up, c.bytes_down + down)


class FakeShaper:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.uplink: Rate | None = None
        self._rates: dict[IPv4Address, Rate] = {}

    def setup(self, uplink: Rate) -> None:
        self.calls.append(("setup", uplink))
        self.uplink = uplink

    def teardown(self) -> None:
        self.calls.append(("teardown", None))
        self.uplink = None
        self._rates.clear()

    def state(self) -> Mapping[IPv4Address, Rate]:
        return dict(self._rates)

    def apply(self, change: ShaperChange) -> None:
        if self.uplink is None:
            raise RuntimeError("apply() before setup()")
        self.calls.append(("apply", change))
        for ip in change.remove:
            self._rates.pop(ip, None)
        self._rates.update(change.set)


class FakeClock:
    """A machine's clock that moves only when told to.

    `advance` is time passing (wall and monotonic alike); `step` is the wall clock jumping
    (NTP, `date -s`) while the monotonic one does not; `is_synced` is what the machine says.
    """

    def __init__(self, now: datetime, *, synced: bool = True) -> None:
        self.moment = now
        self.mono = 1000.0
        self.is_synced = synced

    def now(self) -> datetime:
        return self.moment

    def monotonic(self) -> float:
        return self.mono

    def synced(self) -> bool:
        return self.is_synced

    def advance(self, **kw: float) -> None:
        delta = timedelta(**kw)
        self.moment += delta
        self.mono += delta.total_seconds()

    def step(self, to: datetime | None = None, **kw: float) -> None:
        self.moment = to if to is not None else self.moment + timedelta(**kw)
