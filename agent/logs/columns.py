"""The same fields of many lines at once: the summary's fast path for a block of journal lines.

A `Cursor` holds one position in each of many lines (all decisions of a block, say) and moves
them together along the layout the journal writes, field by field, with numpy: a key and the
value after it are read from one window of each line, the key compared for every line in one
operation, a string's closing quote found as the first quote in the window. Only a long jump
(past a decision's breakout evidence) may take a C call per line. A line that does not follow
the layout is marked not `ok`, and the reader then returns None: the caller reads those lines
another way (`scan`). What a reader accepts, it reads as the regular expressions of `scan`
would, and as parsing the line would (for a line that is valid JSON).

The block's buffer must hold SLACK bytes after its last line: windows are read past a line's
end, and what they find there is never used (a find is checked against the line's newline).
"""

from __future__ import annotations

from collections import Counter
from itertools import repeat
from typing import Any

import numpy as np

SHORT = 48  # the window for a key's value (an id, a date, a number)
WORD = 16  # the window for a short value (an action, a state, a side, an asset)
MEDIUM = 128  # the window for a decision's reason or its target weights
LONG = 512  # the window for a decision's breakout evidence; a longer one is sought
SLACK = LONG
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_BETWEEN = 128  # an order's fields between its side and its status; farther: read otherwise
_NULL = np.frombuffer(b"null\0\0\0\0", "<u8")[0]
_FOUR = np.uint64(0xFFFFFFFF)


class Cursor:
    """One position in each of many lines; `ok`: the lines that follow the layout so far."""

    def __init__(self, data: bytearray, at: np.ndarray, ends: np.ndarray) -> None:
        self.data = data
        self.at = at.astype(np.int64)
        self.ends = ends
        self.ok = np.ones(len(at), dtype=bool)
        self.index = np.arange(len(at))
        self._windows: dict[int, np.ndarray] = {}

    def rows(self, width: int, at: np.ndarray | None = None) -> np.ndarray:
        """`width` bytes from each position: a new (n, width) array. A position past the
        buffer (only ever in a line already not `ok`) reads its last bytes."""
        windows = self._windows.get(width)
        if windows is None:  # one item of `width` bytes at each offset: copied whole
            count = len(self.data) - width + 1
            windows = np.ndarray((count,), f"V{width}", self.data, 0, (1,))
            self._windows[width] = windows
        at = np.minimum(self.at if at is None else at, len(windows) - 1)
        return windows[at].view(np.uint8).reshape(len(at), width)

    def _move(self, fine: np.ndarray, step: np.ndarray | int, where: np.ndarray | None) -> None:
        if where is None:
            self.ok &= fine
            self.at += step
        else:
            self.ok &= fine | ~where
            self.at += np.where(where, step, 0)

    def literal(self, text: bytes, where: np.ndarray | None = None) -> None:
        """The bytes `text` (in the lines `where`, if given); move past them."""
        size = -(-len(text) // 8) * 8
        self._move(_same(self.rows(size), text), len(text), where)

    def text(
        self,
        key: bytes,
        where: np.ndarray | None = None,
        *,
        null: bool = False,
        backslash: bool = False,
        width: int = SHORT,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`key` (the bytes before the value), then a string of fewer than `width` bytes
        (quotes included; a narrow window is cheaper), without a backslash unless `backslash`,
        or with `null`, null: (start, length, is null) of the text; moves past the value."""
        width = -(-(len(key) + width) // 8) * 8
        rows = self.rows(width)
        fine = _same(rows, key)
        value = rows[:, len(key) :]
        missing = np.zeros(len(rows), dtype=bool)
        if null:
            missing = (value[:, :8].copy().view("<u8")[:, 0] & _FOUR) == _NULL
        hit = value == _QUOTE
        if not backslash:
            hit |= value == _BACKSLASH
        hit[:, 0] = False
        close = hit.argmax(axis=1)
        found = (value[:, 0] == _QUOTE) & (value[self.index, close] == _QUOTE) & (close > 0)
        fine &= missing | (found & (self.at + len(key) + close < self.ends))
        start = self.at + len(key) + 1
        self._move(fine, len(key) + np.where(missing, 4, close + 1), where)
        return start, np.where(missing, 0, close - 1), missing

    def texts_alike(self, keys: tuple[bytes, ...]) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """`text` for each of `keys` in turn, in one comparison, where every line has values of
        the same lengths as the first line (ids of one run, dates: the usual case) and none has
        a quote or a backslash: (start, length) of each value. None, having moved nothing, if
        the lines differ: read them one key at a time."""
        first, end, spans = int(self.at[0]), int(self.ends[0]), []
        at = first
        for key in keys:
            close = self.data.find(b'"', at + len(key) + 1, end)
            if close < 0 or self.data[at : at + len(key) + 1] != key + b'"':
                return None
            spans.append((at + len(key) + 1 - first, close - at - len(key) - 1))
            at = close + 1
        width = at - first
        size = -(-width // 8) * 8
        template = bytearray(self.data[first:at]).ljust(size, b"\0")
        mask = bytearray(b"\xff" * width).ljust(size, b"\0")
        values = np.zeros(width, dtype=bool)
        for offset, length in spans:
            values[offset : offset + length] = True
            template[offset : offset + length] = bytes(length)
            mask[offset : offset + length] = bytes(length)
        rows = self.rows(size)
        words = rows.view("<u8") & np.frombuffer(mask, "<u8")
        same = (words == np.frombuffer(template, "<u8")).all(axis=1)
        inside = rows[:, :width]
        same &= ~(((inside == _QUOTE) | (inside == _BACKSLASH)) & values).any(axis=1)
        if not (same & (self.at + width < self.ends)).all():
            return None
        starts = self.at
        self.at = self.at + width
        return [(starts + offset, np.full(len(rows), length)) for offset, length in spans]

    def number(self, key: bytes, stops: bytes) -> tuple[np.ndarray, np.ndarray]:
        """`key`, then a value running to the first of `stops` (within SHORT bytes):
        (start, length); moves onto the stop."""
        width = -(-(len(key) + SHORT) // 8) * 8
        rows = self.rows(width)
        fine = _same(rows, key)
        value = rows[:, len(key) :]
        hit = value == stops[0]
        for stop in stops[1:]:
            hit |= value == stop
        length = hit.argmax(axis=1)
        fine &= hit[self.index, length] & (self.at + len(key) + length < self.ends)
        start = self.at + len(key)
        self._move(fine, len(key) + length, None)
        return start, length

    def until(self, byte: bytes, where: np.ndarray | None = None, *, width: int = LONG) -> None:
        """Move onto the next `byte` within `width` bytes, or, where it is not, onto the next
        one in the line (one C call a line)."""
        if width:
            rows = self.rows(width)
            hit = rows == byte[0]
            length = hit.argmax(axis=1)
            found = hit[self.index, length]
        else:  # straight to the C call
            length = np.zeros(len(self.at), dtype=np.int64)
            found = np.zeros(len(self.at), dtype=bool)
        far = ~found if where is None else ~found & where
        if far.any():
            index = np.flatnonzero(far)
            at, ends = (self.at[index] + width).tolist(), self.ends[index].tolist()
            sought = map(self.data.find, repeat(byte), at, ends)
            sought_at = np.fromiter(sought, np.int64, len(index))
            length[index] = sought_at - self.at[index]
            found[index] = sought_at >= 0
        self._move(found & (self.at + length < self.ends), length, where)

    def digits(self, key: bytes, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`key`, then [0-9]+ (in the lines `where`): (start, length)."""
        width = -(-(len(key) + 8) // 8) * 8
        rows = self.rows(width)
        value = rows[:, len(key) : len(key) + 8]
        digit = (value >= ord("0")) & (value <= ord("9"))
        length = np.where(digit.all(axis=1), 8, (~digit).argmax(axis=1))
        self.ok &= (_same(rows, key) & (length > 0)) | ~where
        return self.at + len(key), length

    def texts(self, start: np.ndarray, length: np.ndarray) -> np.ndarray:
        """The bytes at each (start, length) as a fixed-width bytes array (numpy `S`): equal
        texts are equal items; `.tolist()` gives them as bytes."""
        width = max(8, -(-int(length.max(initial=0)) // 8) * 8)
        rows = self.rows(width, start)
        rows *= np.arange(width) < length[:, None]
        return rows.view(f"S{width}")[:, 0]

    def numbers(self, start: np.ndarray, length: np.ndarray) -> np.ndarray:
        """The numbers written at each (start, length), as float() reads them (numpy's parser
        rounds correctly, as float() does); ValueError if one is not a number."""
        return self.texts(start, length).astype(np.float64)


def _same(rows: np.ndarray, text: bytes) -> np.ndarray:
    """Which rows start with `text` (rows: a width of 8-byte words, at least `text`'s)."""
    template, mask = _word_template(text)
    words = rows.view("<u8")[:, : len(template)]
    same = (words[:, 0] & mask[0]) == template[0]
    for k in range(1, len(template)):
        same &= (words[:, k] & mask[k]) == template[k]
    return same


_TEMPLATES: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}


def _word_template(text: bytes) -> tuple[np.ndarray, np.ndarray]:
    """`text` as little-endian 8-byte words, and the mask of its bytes in them."""
    known = _TEMPLATES.get(text)
    if known is None:
        size = -(-len(text) // 8) * 8
        template = np.frombuffer(text.ljust(size, b"\0"), "<u8")
        mask = np.frombuffer((b"\xff" * len(text)).ljust(size, b"\0"), "<u8")
        known = _TEMPLATES[text] = (template, mask)
    return known


def _pairs(first: np.ndarray, second: np.ndarray) -> Counter[tuple[bytes, bytes]]:
    """Counts of (first, second) texts, counted as one fixed-width text per line."""
    wide = first.dtype.itemsize
    joined = np.hstack([first.view(np.uint8).reshape(len(first), -1), _bytes_of(second)])
    counted = Counter(joined.view(f"S{joined.shape[1]}")[:, 0].tolist())
    return Counter(
        {(key[:wide].rstrip(b"\0"), key[wide:].rstrip(b"\0")): n for key, n in counted.items()}
    )


def _bytes_of(texts: np.ndarray) -> np.ndarray:
    return texts.view(np.uint8).reshape(len(texts), -1)


def decisions(cursor: Cursor) -> dict[str, Any] | None:
    """Decision lines from the closing quote of the event name, as `scan._DECISION` reads them:
    `ids` (bytes), `actions` (counts), and `stages`: (index, stage, state, asof) of each
    decision whose stage or breakout state differs from the decision before it (bytes, None
    where null; the first decision always, a decision with neither never)."""
    c = cursor
    alike = c.texts_alike((b'", "decision_id": ', b', "asof": ', b', "crypto_asof": '))
    if alike is not None:
        ids, asofs = alike[0], alike[1]
        no_asof = np.zeros(len(c.at), dtype=bool)
    else:
        ids = c.text(b'", "decision_id": ')[:2]
        *asofs, no_asof = c.text(b', "asof": ', null=True, backslash=True)
        crypto = _same(c.rows(24), b', "crypto_asof": ')
        c.text(b', "crypto_asof": ', crypto, null=True, backslash=True)
    actions = c.text(b', "action": ', width=WORD)
    c.ok &= actions[1] > 0
    c.literal(b', "reason": "')
    # The first quote closes the reason, or what follows it is not the next field.
    c.until(b'"', width=MEDIUM)
    c.literal(b'", "breakout": ')
    no_breakout = _same(c.rows(8), b"null")
    c.literal(b"null", no_breakout)
    has = ~no_breakout
    if has.all() and c.texts_alike((b'{"date": ',)) is not None:
        pass
    else:
        c.text(b'{"date": ', has, null=True, backslash=True)
    states = c.text(b', "state": ', has, width=WORD)
    c.ok &= (states[1] > 0) | ~has
    c.until(b"}", has)
    c.literal(b"}", has)
    c.literal(b', "targets": ')
    no_targets = _same(c.rows(8), b"null")
    c.literal(b"null", no_targets)
    has_targets = ~no_targets
    c.literal(b'{"weights": {', has_targets)
    c.until(b"}", has_targets, width=MEDIUM)
    stages = c.digits(b'}, "stage": ', has_targets)
    if not c.ok.all():
        return None
    state_texts = c.texts(states[0], np.where(has, states[1], 0))
    stage_texts = c.texts(stages[0], np.where(has_targets, stages[1], 0))
    keys = np.hstack([_bytes_of(state_texts), _bytes_of(stage_texts)]).view("<u8")
    kept = has | has_targets  # neither: a refusal before the signal was read
    if not kept.all():
        keys = keys[kept]
    differ = np.ones(len(keys), dtype=bool)
    differ[1:] = (keys[1:] != keys[:-1]).any(axis=1)
    changed = np.flatnonzero(kept)[differ] if not kept.all() else np.flatnonzero(differ)
    asof_texts = c.texts(asofs[0][changed], np.where(no_asof, 0, asofs[1])[changed]).tolist()
    moves = [
        (
            i,
            None if no_targets[i] else stage_texts[i],
            None if no_breakout[i] else state_texts[i],
            None if no_asof[i] else asof,
        )
        for i, asof in zip(changed.tolist(), asof_texts, strict=True)
    ]
    return {
        "ids": c.texts(*ids[:2]).tolist(),
        "actions": Counter(c.texts(*actions[:2]).tolist()),
        "stages": moves,
    }


def orders(cursor: Cursor) -> Counter[tuple[bytes, bytes]] | None:
    """Order lines: counts by (status, side), as `scan._ORDER` reads them."""
    c = cursor
    if c.texts_alike((b'", "decision_id": ', b', "client_order_id": ')) is None:
        c.text(b'", "decision_id": ', null=True)
        c.text(b', "client_order_id": ', backslash=True)
    c.text(b', "asset": ', backslash=True, width=WORD)
    sides = c.text(b', "side": ', backslash=True, width=WORD)
    # The record's own status: the first key "status" after the side, with no object, list
    # or escape before it (so it is not a key of a nested object).
    ends = c.ends.tolist()
    found = np.fromiter(
        map(c.data.find, repeat(b', "status": "'), c.at.tolist(), ends), np.int64, len(ends)
    )
    width = found - c.at
    rows = c.rows(_BETWEEN)
    opened = (rows == ord("{")) | (rows == ord("[")) | (rows == _BACKSLASH)
    first = np.where(opened.any(axis=1), opened.argmax(axis=1), _BETWEEN)
    c.ok &= (found >= 0) & (width < _BETWEEN) & (first > width)
    c.at = np.where(found >= 0, found, c.at)
    statuses = c.text(b', "status": ', backslash=True, width=WORD + 8)
    if not c.ok.all():
        return None
    return _pairs(c.texts(*statuses[:2]), c.texts(*sides[:2]))


def fills(cursor: Cursor) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Fill lines: each one's side (bytes array), amount x price and fee, as `scan._FILL` reads
    them; None if a field is not where the layout puts it or a number is null."""
    c = cursor
    if c.texts_alike((b'", "decision_id": ', b', "client_order_id": ')) is None:
        c.text(b'", "decision_id": ', null=True)
        c.text(b', "client_order_id": ', backslash=True)
    c.text(b', "trade_id": ', backslash=True)
    c.text(b', "asset": ', backslash=True, width=WORD)
    sides = c.text(b', "side": ', backslash=True, width=WORD)
    amounts = c.number(b', "amount": ', b",")
    prices = c.number(b', "price": ', b",")
    fees = c.number(b', "fee": ', b",}")
    if not c.ok.all():
        return None
    try:
        values = c.numbers(*amounts) * c.numbers(*prices)
        paid = c.numbers(*fees)
    except ValueError:
        return None
    return c.texts(*sides[:2]), values, paid


def clamps(cursor: Cursor) -> Counter[tuple[bytes, bytes]] | None:
    """Risk lines: counts by (rule, asset), as `scan._CLAMP` reads them (b"" for null)."""
    c = cursor
    if c.texts_alike((b'", "decision_id": ',)) is None:
        c.text(b'", "decision_id": ', null=True)
    rules = c.text(b', "rule": ', backslash=True)
    assets = c.text(b', "asset": ', null=True, backslash=True)
    if not c.ok.all():
        return None
    return _pairs(c.texts(*rules[:2]), c.texts(*assets[:2]))  # a null asset: b"", shown "-"
