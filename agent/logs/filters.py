"""The `show` filters: a cheap test on a framed line's bytes, then the exact test on its record.

The byte test only ever lets through more than the exact test keeps (a substring may occur in
another field); it never drops a record the exact test would keep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from agent.logs.read import STAMP_END, event_of

_MICRO = timedelta(microseconds=1)


@dataclass(frozen=True)
class Filter:
    """Records with `since <= ts < until` (stamps), one of `events`, about `asset`, `rule` or
    `decision`; None or empty means any."""

    since: str | None = None
    until: str | None = None
    events: frozenset[str] = frozenset()
    asset: str | None = None
    rule: str | None = None
    decision: str | None = None
    _needles: tuple[bytes, ...] = field(init=False, repr=False, compare=False)
    _events: frozenset[bytes] = field(init=False, repr=False, compare=False)
    _since: bytes | None = field(init=False, repr=False, compare=False)
    _until: bytes | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = (self.asset, self.rule, self.decision)
        needles = tuple(f'"{value}"'.encode() for value in values if value)
        object.__setattr__(self, "_needles", needles)
        object.__setattr__(self, "_events", frozenset(e.encode() for e in self.events))
        object.__setattr__(self, "_since", self.since.encode() if self.since else None)
        object.__setattr__(self, "_until", self.until.encode() if self.until else None)

    def keep_line(self, line: bytes) -> bool:
        """Whether a framed line may match: False only when the exact test would say so too."""
        if self._events and event_of(line) not in self._events:
            return False
        stamp = line[8:STAMP_END]
        if self._since is not None and stamp < self._since:
            return False
        if self._until is not None and stamp >= self._until:
            return False
        # A decision id inside a client order id is still followed by a quote ("ID-0" is not
        # '"ID"'), so this substring test never drops a record citing the id.
        return all(needle in line for needle in self._needles)

    def keep(self, record: dict[str, Any]) -> bool:
        """The exact test."""
        ts = record.get("ts")
        if self.since is not None and not (isinstance(ts, str) and ts >= self.since):
            return False
        if self.until is not None and not (isinstance(ts, str) and ts < self.until):
            return False
        if self.events and record.get("event") not in self.events:
            return False
        if self.decision is not None and record.get("decision_id") != self.decision:
            return False
        if self.asset is not None and self.asset not in _assets(record):
            return False
        return self.rule is None or self.rule in _rules(record)


def _assets(record: dict[str, Any]) -> set[Any]:
    """The assets a record is about: its own, or a decision's orders' and clamps'."""
    found = {record.get("asset")}
    if record.get("event") == "decision":
        for key in ("orders", "clamps"):
            items = record.get(key)
            if isinstance(items, list):
                found.update(item.get("asset") for item in items if isinstance(item, dict))
    found.discard(None)
    return found


def _rules(record: dict[str, Any]) -> set[Any]:
    """The risk rules a record names: a risk or halt record's own, or a decision's clamps'."""
    found = {record.get("rule")}
    clamps = record.get("clamps") if record.get("event") == "decision" else None
    if isinstance(clamps, list):
        found.update(item.get("rule") for item in clamps if isinstance(item, dict))
    found.discard(None)
    return found


def bound(text: str, *, upper: bool) -> str:
    """A `--since`/`--until` value as a journal stamp: `since <= ts < until`.

    A date is its whole UTC day (`--until 2021-01-04` keeps that day); a timestamp is that
    instant (naive means UTC) and `--until` keeps it too. ValueError for anything else.
    """
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None and len(text) == 10:
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if upper:
            moment += timedelta(days=1)
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{text!r} is neither a date (2021-01-04) nor a timestamp (2021-01-04T12:00:00Z)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if upper:
            moment += _MICRO
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
