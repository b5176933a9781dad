"""The grid file: dotted config keys mapped to lists of values, validated into points.

```toml
signal.volume_multiple = [1.2, 1.5, 2.0]
staging.after_window = ["taper", "exit"]
```

A point is one value per key; its config is the base config with those values set, validated
by the same strict models as any config file. Every key and every value is checked before any
backtest runs, and a problem is one line naming the key and the value.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.config import Config, describe_error

Params = dict[str, Any]
"""One point: dotted key -> value."""


class GridError(Exception):
    """A grid that cannot be swept; the message is one line."""


@dataclass(frozen=True)
class Grid:
    path: Path
    axes: dict[str, tuple[Any, ...]]
    """Dotted key -> its values, in the file's order."""

    @property
    def size(self) -> int:
        return math.prod(len(values) for values in self.axes.values())


def parse_grid(path: Path) -> Grid:
    """Read a grid file; GridError (one line) when it is unreadable, a key holds no list, a list
    is empty or repeats a value."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GridError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise GridError(f"{path}: cannot read: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise GridError(f"{path}: invalid TOML: {exc}") from None
    axes: dict[str, tuple[Any, ...]] = {}
    for key, values in _flatten(table):
        if not isinstance(values, list):
            raise GridError(f"{path}: {key} = {_show(values)}: must be a list of values")
        if not values:
            raise GridError(f"{path}: {key} = []: empty list: give at least one value")
        seen: list[str] = []
        for value in values:
            text = _canonical(value)
            if text in seen:
                raise GridError(f"{path}: {key} = {_show(value)}: repeated value")
            seen.append(text)
        axes[key] = tuple(values)
    if not axes:
        raise GridError(f"{path}: no keys to sweep (e.g. signal.volume_multiple = [1.2, 1.5])")
    return Grid(path, axes)


def _flatten(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, dotted + ".")
        else:
            yield dotted, value


def point_id(params: Mapping[str, Any]) -> str:
    """A short hash of a point's parameters: the same values give the same id."""
    return hashlib.sha256(_canonical(dict(params)).encode()).hexdigest()[:12]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _show(value: Any) -> str:
    return json.dumps(value, default=str) if not isinstance(value, str) else f'"{value}"'


def describe(params: Mapping[str, Any]) -> str:
    """`key = value, ...` for messages and tables."""
    return ", ".join(f"{k} = {_show(v)}" for k, v in params.items())


def point_config(base: Config, params: Mapping[str, Any]) -> Config:
    """`base` with each dotted key set to its value, validated; PointError on a problem."""
    data = base.model_dump(mode="json")
    for key, value in params.items():
        _set(data, key, value)
    try:
        return Config.model_validate_json(json.dumps(data, default=str))
    except ValidationError as exc:
        raise PointError(_problem(exc.errors()[0])) from None


class PointError(Exception):
    """A point whose config does not validate; the message names the field and the problem."""


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    node: Any = data
    parts = key.split(".")
    for n, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {}) if isinstance(node, dict) else node[_index(node, parts, n)]
    if isinstance(node, dict):
        node[parts[-1]] = value
    else:
        node[_index(node, parts, len(parts) - 1)] = value


def _index(node: Any, parts: list[str], n: int) -> int:
    """`parts[n]` as an index into `node`, the list at `parts[:n]`; PointError naming the key
    when `node` is no list or has no such item."""
    owner, key = ".".join(parts[:n]), ".".join(parts[: n + 1])
    if not isinstance(node, list):
        raise PointError(f"{owner}: not a table, so it has no keys")
    if not node:
        raise PointError(f"{key}: no such index (the config's {owner} is empty)")
    items = f"{len(node)} items: 0..{len(node) - 1}" if len(node) > 1 else "1 item: 0"
    if not parts[n].isdecimal():
        raise PointError(f"{key}: not an index (the config's {owner} is a list of {items})")
    if int(parts[n]) >= len(node):
        raise PointError(f"{key}: no such index (the config's {owner} has {items})")
    return int(parts[n])


def _problem(err: Mapping[str, Any]) -> str:
    key, message = describe_error(err)
    return f"{key}: {message}" if key else message


def validate(grid: Grid, base: Config, points: list[Params]) -> list[Config]:
    """Each key and value alone, then each point: their configs, or GridError (one line)."""
    for key, values in grid.axes.items():
        for value in values:
            try:
                point_config(base, {key: value})
            except PointError as exc:
                raise GridError(f"{grid.path}: {key} = {_show(value)}: {exc}") from None
    configs = []
    for params in points:
        try:
            configs.append(point_config(base, params))
        except PointError as exc:
            raise GridError(f"{grid.path}: point {describe(params)}: {exc}") from None
    return configs


def cartesian(grid: Grid) -> list[Params]:
    """Every combination, the last key varying fastest."""
    keys = list(grid.axes)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.axes.values())]


def random_points(grid: Grid, trials: int, seed: int) -> list[Params]:
    """`trials` distinct combinations drawn with `seed` (all of them when the grid is smaller)."""
    total = grid.size
    if trials >= total:
        return cartesian(grid)
    keys, axes = list(grid.axes), list(grid.axes.values())
    points = []
    for index in random.Random(seed).sample(range(total), trials):
        combo = []
        for values in reversed(axes):  # mixed radix, the last key varying fastest
            index, digit = divmod(index, len(values))
            combo.append(values[digit])
        points.append(dict(zip(keys, reversed(combo), strict=True)))
    return points


@dataclass(frozen=True)
class Dimension:
    """What optuna samples for one key: `int` or `float` between low and high, or one of
    `choices`."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()


def search_space(grid: Grid) -> dict[str, Dimension]:
    """Lists of numbers become their min..max range (int when every value is an int), lists of
    strings or booleans a categorical choice; anything else is a GridError."""
    space = {}
    for key, values in grid.axes.items():
        if all(_is_number(v) for v in values):
            kind = "int" if all(isinstance(v, int) for v in values) else "float"
            space[key] = Dimension(kind, min(values), max(values))
        elif all(isinstance(v, str | bool) for v in values):
            space[key] = Dimension("categorical", choices=values)
        else:
            raise GridError(
                f"{grid.path}: {key} = {_show(list(values))}: optuna samples lists of numbers "
                "or of strings only"
            )
    return space


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def neighbours(grid: Grid, key: str, value: Any) -> tuple[Any | None, Any | None]:
    """The grid values one step below and above `value` (None at an end): for numbers the
    nearest values in sorted order, otherwise the values beside it in the file's order."""
    values = grid.axes[key]
    if _is_number(value) and all(_is_number(v) for v in values):
        below = [v for v in values if v < value]
        above = [v for v in values if v > value]
        return (max(below) if below else None, min(above) if above else None)
    texts = [_canonical(v) for v in values]
    if _canonical(value) not in texts:
        return None, None
    i = texts.index(_canonical(value))
    return (values[i - 1] if i > 0 else None, values[i + 1] if i + 1 < len(values) else None)
