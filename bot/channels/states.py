"""What each channel is doing, for /healthz and the operator's log: one state per channel.

    off        not configured (no token, or disabled in config.toml)
    starting   being set up
    running    connected and serving
    retrying   its service cannot be reached; it retries with back-off while the others keep serving
    failed     given up for a reason only the operator can fix (a rejected token); the others keep serving

Written and read on the event loop of `bulletin-bot serve` (worker threads only read it), so a plain
dict suffices: each write replaces one string.
"""
from __future__ import annotations

STATES = ("off", "starting", "running", "retrying", "failed")


class ChannelStates:
    """The state of every channel of one `serve` process."""

    def __init__(self, **initial: str):
        self._states: dict[str, str] = {}
        for channel, state in initial.items():
            self.set(channel, state)

    def set(self, channel: str, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"unknown channel state {state!r}")
        self._states[channel] = state

    def get(self, channel: str) -> str | None:
        return self._states.get(channel)

    def snapshot(self) -> dict[str, str]:
        """Return {channel: state}, for /healthz."""
        return dict(sorted(self._states.items()))


def backoff(first_s: float, max_s: float):
    """Yield waiting times that double from first_s up to max_s, forever."""
    wait = first_s
    while True:
        yield wait
        wait = min(wait * 2, max_s)
