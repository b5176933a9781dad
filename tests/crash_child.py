"""The agent process of the crash proof: the real `spillover run` on a clock the parent keeps.

    CRASH_CONTROL=http://127.0.0.1:PORT/_control [CRASH_KILL='{"kind": "intent", ...}'] \\
        python -m tests.crash_child run --config CFG.toml --run-dir DIR

(from the repository root). The arguments go to the CLI (`agent.cli.app`) unchanged; before that,
`agent.live.run_live` is replaced by itself with two more arguments, which the CLI never passes:

- `clock`: `now()` asks the parent (`GET <control>/now`), so simulated time survives this process
  being killed: a restarted child resumes at the same simulated moment.
- `sleep`: asks the parent to move time to the next daily tick (`POST <control>/advance`, which
  also moves the emulated market there). When that would pass the last day, the parent says
  `done` and the child sends itself SIGTERM: the CLI finishes as on Ctrl-C and exits 0.

`CRASH_KILL` (JSON) arms one kill for this process life; the child SIGKILLs itself at that
moment, after telling the parent (`POST <control>/note`). Kinds (see tests/crash_run.py):

- `intent`: right after `Store.record_intents` has committed, before any order is sent;
- `tick`: right after a tick's `Store.tick` block has committed;
- `journal`: right after a journal line has been written (and flushed);
- `torn`: the same, then the file is cut in the middle of that line (a torn last line);
- `read`: just before a venue read (markets, balances, open orders, trades, order lookup).

Each is the `k`-th such event at or after the simulated time `at`. Kinds the parent does itself
(`create`, `wall`) need nothing here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

CONTROL_ENV = "CRASH_CONTROL"
KILL_ENV = "CRASH_KILL"
CHILD_KINDS = ("intent", "tick", "journal", "torn", "read")
READS = ("markets", "balances", "open_orders", "trades", "fetch_order")
"""The TestnetVenue reads a `read` kill can precede."""

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy


class Control:
    """The parent's control endpoint: simulated time, and notes about kills."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.last: datetime | None = None
        """The last time `now()` returned."""

    def call(self, method: str, path: str, payload: object = None) -> dict[str, Any]:
        body = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(f"{self.url}/{path}", data=body, method=method)
        with _OPENER.open(request, timeout=30) as answer:
            return json.loads(answer.read())

    def now(self) -> datetime:
        self.last = datetime.fromisoformat(self.call("GET", "now")["now"])
        return self.last

    def sleep(self, seconds: float) -> None:
        """Jump to the next daily tick (the loop waits for nothing else); past the last day,
        stop the run as SIGTERM does."""
        if seconds <= 0:
            return
        seen = self.last.isoformat() if self.last is not None else None
        answer = self.call("POST", "advance", {"from": seen})
        self.last = datetime.fromisoformat(answer["now"])
        if answer["done"]:
            os.kill(os.getpid(), signal.SIGTERM)

    def note(self, **fields: Any) -> None:
        with contextlib.suppress(OSError):  # the note is a courtesy; the kill is the point
            self.call("POST", "note", fields)


class Trigger:
    """Fires at the k-th event at or after simulated time `at`."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.kind: str = plan["kind"]
        self.at = datetime.fromisoformat(plan["at"])
        self.k: int = int(plan.get("k", 1))
        self.seen = 0

    def hit(self, when: datetime | None) -> bool:
        if when is None or when < self.at:
            return False
        self.seen += 1
        return self.seen == self.k


def die(control: Control, trigger: Trigger, when: datetime | None, **detail: Any) -> None:
    control.note(
        kind=trigger.kind,
        k=trigger.k,
        at=trigger.at.isoformat(),
        when=None if when is None else when.isoformat(),
        pid=os.getpid(),
        **detail,
    )
    os.kill(os.getpid(), signal.SIGKILL)


def tear_last_line(path: Path) -> int:
    """Cut the file in the middle of its last line (a write that landed partly); the bytes
    kept of that line."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        handle.seek(max(0, size - 65536))
        tail = handle.read()
    body = tail[:-1] if tail.endswith(b"\n") else tail
    line = body[body.rfind(b"\n") + 1 :]
    keep = max(1, len(line) // 2)
    os.truncate(path, size - (len(tail) - len(body)) - len(line) + keep)
    return keep


def arm(plan: dict[str, Any], control: Control) -> None:
    """Patch the one place the planned kill happens."""
    from agent.store import Store
    from agent.venue.testnet import TestnetVenue
    from risk.journal import Journal

    trigger = Trigger(plan)
    kind = trigger.kind
    if kind == "intent":
        record_intents = Store.record_intents

        def intents_then_die(
            self: Store, now: datetime, decision_id: str, requests: Any, *a: Any, **kw: Any
        ) -> Any:
            requests = list(requests)
            result = record_intents(self, now, decision_id, requests, *a, **kw)
            if trigger.hit(now):
                ids = [getattr(r, "client_order_id", None) for r in requests]
                die(control, trigger, now, decision_id=decision_id, client_order_ids=ids)
            return result

        Store.record_intents = intents_then_die  # type: ignore[method-assign]
    elif kind == "tick":
        tick = Store.tick

        @contextlib.contextmanager
        def tick_then_die(self: Store, now: datetime, *a: Any, **kw: Any) -> Iterator[Any]:
            with tick(self, now, *a, **kw) as handle:
                yield handle
            if trigger.hit(now):
                die(control, trigger, now)

        Store.tick = tick_then_die  # type: ignore[method-assign,assignment]
    elif kind in ("journal", "torn"):
        write = Journal.write

        def write_then_die(self: Journal, event: str, ts: datetime, **fields: Any) -> Any:
            record = write(self, event, ts, **fields)
            if trigger.hit(ts):
                kept = tear_last_line(self.path) if kind == "torn" else None
                die(control, trigger, ts, event=event, kept_bytes=kept)
            return record

        Journal.write = write_then_die  # type: ignore[method-assign]
    elif kind == "read":
        for name in READS:
            method = getattr(TestnetVenue, name, None)
            if method is not None:
                setattr(TestnetVenue, name, _die_before(method, name, trigger, control))
    else:
        raise ValueError(f"{KILL_ENV}: unknown kind {kind!r}; child kinds: {CHILD_KINDS}")


def _die_before(
    method: Callable[..., Any], name: str, trigger: Trigger, control: Control
) -> Callable[..., Any]:
    @functools.wraps(method)
    def read(self: Any, *args: Any, **kwargs: Any) -> Any:
        when = control.last or control.now()
        if trigger.hit(when):
            die(control, trigger, when, call=name)
        return method(self, *args, **kwargs)

    return read


def main(argv: list[str]) -> None:
    import agent.live
    from agent.cli import app

    control = Control(os.environ[CONTROL_ENV])
    plan = json.loads(os.environ.get(KILL_ENV) or "null")
    if plan is not None:
        arm(plan, control)
    agent.live.run_live = functools.partial(  # type: ignore[assignment]
        agent.live.run_live, clock=control, sleep=control.sleep
    )
    app(argv, prog_name="spillover")


if __name__ == "__main__":
    main(sys.argv[1:])
