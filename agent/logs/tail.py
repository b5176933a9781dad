"""`logs tail [-f]`: the last records of a journal, then (with -f) each record as it is written.

Like `tail -f`: the file is polled for growth; bytes after the last newline are held until the
rest of the line arrives (a record being written, or a torn line the next run will repair); a
file cut back (a torn tail set aside on reopening) or replaced (`run --fresh`) is read on from
where its good lines end, or from its start.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from agent.logs.describe import line as readable
from agent.logs.read import OnInvalid, describe_invalid, parse

_CHUNK = 1 << 16


def tail(
    path: Path,
    write: Callable[[str], None],
    on_invalid: OnInvalid,
    *,
    count: int = 10,
    follow: bool = False,
    poll: float = 0.2,
    stop: Callable[[], bool] = lambda: False,
    note: Callable[[str], None] | None = None,
) -> None:
    """Write the last `count` records of `path` as readable lines; with `follow`, keep writing
    new ones until `stop()` is true (or KeyboardInterrupt, which the caller turns into exit 0).
    `note` hears about a journal cut back or replaced."""
    reader = _Reader(path, write, on_invalid)
    with open(path, "rb") as file:
        size = file.seek(0, os.SEEK_END)
        start = _start_of_last(file, size, count)
        reader.number = _count_newlines(file, start)
        file.seek(start)
        reader.feed(file.read(size - start))
        if not follow:
            reader.finish()
            return
        inode, position = os.fstat(file.fileno()).st_ino, size
        while not stop():
            time.sleep(poll)
            try:
                status = os.stat(path)
            except FileNotFoundError:
                continue  # being replaced: wait for the new file
            if status.st_ino != inode or status.st_size < position:
                file = _reopen(file, path)
                inode = os.fstat(file.fileno()).st_ino
                resume = reader.pending_start if status.st_ino == inode else 0
                resume = resume if resume <= status.st_size else 0
                if note is not None:
                    what = "replaced" if resume == 0 else "cut back"
                    note(f"{path}: journal {what}; reading on from byte {resume}")
                reader.restart(resume, _count_newlines(file, resume))
                position = resume
            file.seek(position)
            data = file.read()
            position += len(data)
            reader.feed(data)
        file.close()


class _Reader:
    """Turns bytes into whole lines, numbered, holding a partial last line."""

    def __init__(self, path: Path, write: Callable[[str], None], on_invalid: OnInvalid) -> None:
        self.path, self.write, self.on_invalid = path, write, on_invalid
        self.number = 0
        self.partial = b""
        self.offset = 0  # bytes fed since the last restart (from byte 0 or `base`)
        self.base = 0

    @property
    def pending_start(self) -> int:
        """The byte offset where the held partial line starts."""
        return self.base + self.offset - len(self.partial)

    def restart(self, base: int, number: int) -> None:
        self.base, self.offset, self.number, self.partial = base, 0, number, b""

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self.offset += len(data)
        chunks = (self.partial + data).split(b"\n")
        self.partial = chunks.pop()
        for chunk in chunks:
            self.number += 1
            self._emit(chunk + b"\n")

    def finish(self) -> None:
        """End of a read without follow: a partial last line is torn, reported."""
        if self.partial:
            self.number += 1
            torn = ValueError("torn: no newline at the end of the file")
            self.on_invalid(self.number, describe_invalid(self.partial, torn))
            self.partial = b""

    def _emit(self, line: bytes) -> None:
        try:
            record = parse(line)
        except ValueError as exc:
            self.on_invalid(self.number, describe_invalid(line, exc))
            return
        self.write(readable(record))


def _reopen(file: BinaryIO, path: Path) -> BinaryIO:
    file.close()
    while True:
        try:
            return open(path, "rb")
        except FileNotFoundError:
            time.sleep(0.05)


def _start_of_last(file: BinaryIO, size: int, count: int) -> int:
    """The offset of the first of the last `count` whole lines (a partial last line, with no
    newline yet, comes on top of them): just past the (count + 1)-th newline from the end, the
    first one found ending the last whole line."""
    position, newlines = size, 0
    while position > 0:
        step = min(_CHUNK, position)
        file.seek(position - step)
        chunk = file.read(step)
        end = len(chunk)
        while (found := chunk.rfind(b"\n", 0, end)) >= 0:
            newlines += 1
            if newlines == count + 1:
                return position - step + found + 1
            end = found
        position -= step
    return 0


def _count_newlines(file: BinaryIO, end: int) -> int:
    file.seek(0)
    count = 0
    while (left := end - file.tell()) > 0 and (chunk := file.read(min(1 << 20, left))):
        count += chunk.count(b"\n")
    return count
