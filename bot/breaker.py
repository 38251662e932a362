"""The circuit breaker in front of the model service, as pure decisions: the time is passed in.

Closed, every request goes. After `failures` failures in a row (5xx, timeouts, dropped connections,
broken answers; any other answer, a 429 or a 4xx too, shows the service is up and ends the run) it
opens: nothing is sent but one probe every `probe_every` to twice that many seconds (spread, so
several processes do not probe in step). The first answer closes it, and everything waiting goes.
A probe not heard of within `probe_lease` seconds (a process that died) no longer blocks the next.
"""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class BreakerPolicy:
    failures: int = 3
    probe_every: float = 30.0
    probe_lease: float = 90.0


@dataclass(frozen=True)
class Breaker:
    failures: int = 0  # in a row
    failing_since: float | None = None  # the first failure of the run: "not answering since"
    open_since: float | None = None  # None while closed
    next_probe: float = 0.0
    probe_until: float = 0.0  # a probe is out until then
    last_failure: str = ""  # what the last failure was, for people: "HTTP 500", "no answer within 60 s"

    @property
    def is_open(self) -> bool:
        return self.open_since is not None

    def admit(self, now: float, policy: BreakerPolicy, spread: float) -> tuple[Breaker, float, bool]:
        """May a request go now? (the breaker after it, seconds to wait first (0: go), whether it is the
        probe). `spread` in [0, 1) places the next probe within the probe interval."""
        if not self.is_open:
            return self, 0.0, False
        if now >= self.next_probe and now >= self.probe_until:
            return replace(self, probe_until=now + policy.probe_lease,
                           next_probe=now + policy.probe_every * (1 + spread)), 0.0, True
        return self, max(self.next_probe, self.probe_until) - now, False

    def succeeded(self) -> Breaker:
        """The service answered: closed, the run of failures forgotten."""
        return Breaker()

    def failed(self, now: float, what: str, policy: BreakerPolicy, spread: float, *, probe: bool) -> Breaker:
        """A request failed because of the service; `probe`: it was the open breaker's probe."""
        broken = replace(self, failures=self.failures + 1, failing_since=now if self.failing_since is None else self.failing_since, last_failure=what)
        if self.is_open:
            return replace(broken, probe_until=0.0) if probe else broken
        if broken.failures >= policy.failures:
            return replace(broken, open_since=now, next_probe=now + policy.probe_every * (1 + spread))
        return broken

    def wait(self, now: float) -> float:
        """Seconds until an open breaker lets the next probe through (0 when closed)."""
        return max(0.0, self.next_probe - now) if self.is_open else 0.0
