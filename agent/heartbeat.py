"""The run's heartbeat: a small JSON file the loop rewrites at each tick and while it waits for
the next, stamped with the wall clock (even when the run's clock is simulated), so a container
health check or `spillover status` tells a live agent from a hung or dead one without opening the
state store.

The file is replaced whole (written beside, then renamed), so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def beat(path: Path, *, run_id: str, state: str, **fields: Any) -> None:
    """Record that the run is alive now: `state` (`ticking`, `waiting`, `stopped`) and `fields`
    (JSON-ready: times as ISO text)."""
    record = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pid": os.getpid(),
        "run_id": run_id,
        "state": state,
        **fields,
    }
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(record) + "\n")
    os.replace(partial, path)


def read_heartbeat(path: Path) -> dict[str, Any] | None:
    """The last heartbeat with its age in seconds (`age_s`), or None when there is none or it
    cannot be read."""
    try:
        record = json.loads(path.read_text())
        at = datetime.fromisoformat(record["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record | {"age_s": round((datetime.now(UTC) - at).total_seconds(), 1)}
