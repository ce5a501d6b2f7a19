"""GCRA (the generic cell rate algorithm) for two limits at once: a credential's and
its tenant's, both charged only when both allow.

GCRA keeps one number per limit, the theoretical arrival time (TAT) of the next
request: each request moves it ``interval = window / quota`` ahead, and a request
is refused while the TAT is more than ``window`` ahead of now. So the quota can be
spent in a burst, then refills evenly. The Redis side is one Lua script, atomic and
one round trip for both limits; its two keys share the hash tag ``{tenant}``, so on a
Redis Cluster they sit in one slot and the script may touch both. The local side
(:class:`LocalGcra`) is the same arithmetic in process, used while Redis is away.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Final

# KEYS: the credential's key, the tenant's key. ARGV: interval and window (ms) of each.
# Returns {allowed, credential remaining, credential reset ms, tenant remaining,
# tenant reset ms, retry-after ms}. Redis's own clock: one clock for every replica.
SCRIPT: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local function tat_of(key)
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  return tat
end
local function remaining(tat, interval, window)
  return math.max(0, math.floor((window - (tat - now)) / interval))
end
local ci, cw = tonumber(ARGV[1]), tonumber(ARGV[2])
local ti, tw = tonumber(ARGV[3]), tonumber(ARGV[4])
local c_tat, t_tat = tat_of(KEYS[1]), tat_of(KEYS[2])
local c_new, t_new = c_tat + ci, t_tat + ti
local retry = math.max(c_new - cw - now, t_new - tw - now, 0)
if retry > 0 then
  return {0, remaining(c_tat, ci, cw), math.ceil(c_tat - now),
          remaining(t_tat, ti, tw), math.ceil(t_tat - now), math.ceil(retry)}
end
redis.call('SET', KEYS[1], string.format('%.3f', c_new), 'PX', math.ceil(c_new - now))
redis.call('SET', KEYS[2], string.format('%.3f', t_new), 'PX', math.ceil(t_new - now))
return {1, remaining(c_new, ci, cw), math.ceil(c_new - now),
        remaining(t_new, ti, tw), math.ceil(t_new - now), 0}
"""


@dataclass(frozen=True, slots=True)
class Limit:
    """A quota over a window, as GCRA sees it (milliseconds)."""

    quota: int
    window_seconds: int

    @property
    def window_ms(self) -> float:
        """The window in milliseconds: how far ahead the TAT may run."""
        return self.window_seconds * 1000.0

    @property
    def interval_ms(self) -> float:
        """What one request costs: the window spread over the quota."""
        return self.window_ms / self.quota


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one request, with what the RateLimit header fields report."""

    allowed: bool
    credential_remaining: int
    credential_reset_ms: int
    tenant_remaining: int
    tenant_reset_ms: int
    retry_after_ms: int

    @classmethod
    def of_script(cls, reply: list[int]) -> Decision:
        """The decision the Lua script returned."""
        allowed, c_left, c_reset, t_left, t_reset, retry = (int(value) for value in reply)
        return cls(allowed == 1, c_left, c_reset, t_left, t_reset, retry)


class LocalGcra:
    """The same two-limit GCRA in this process only (while Redis is unreachable).

    Holds at most ``max_keys`` TATs: when full, those already in the past (a full
    quota) go first, then the oldest half.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self._tats: dict[str, float] = {}
        self._max_keys = max_keys

    def decide(self, keys: tuple[str, str], limits: tuple[Limit, Limit]) -> Decision:
        """Charge both limits if both allow, as the script does."""
        now = time.monotonic() * 1000.0
        tats = [max(self._tats.get(key, now), now) for key in keys]
        news = [tat + limit.interval_ms for tat, limit in zip(tats, limits, strict=True)]
        overdue = [new - limit.window_ms - now for new, limit in zip(news, limits, strict=True)]
        retry = max(*overdue, 0.0)
        if retry <= 0:
            for key, new in zip(keys, news, strict=True):
                self._tats[key] = new
            self._trim(now)
        basis = tats if retry > 0 else news
        left = [
            max(0, math.floor((limit.window_ms - (tat - now)) / limit.interval_ms))
            for tat, limit in zip(basis, limits, strict=True)
        ]
        resets = [math.ceil(tat - now) for tat in basis]
        return Decision(retry <= 0, left[0], resets[0], left[1], resets[1], math.ceil(retry))

    def _trim(self, now: float) -> None:
        if len(self._tats) <= self._max_keys:
            return
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        if len(self._tats) > self._max_keys:
            keep = sorted(self._tats.items(), key=lambda item: item[1])[self._max_keys // 2 :]
            self._tats = dict(keep)
