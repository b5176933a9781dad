"""Reviewing a decision journal: `spillover logs summary | show | explain | tail`.

Small modules with one job each:

- `read`: find the journal, stream its lines, parse (orjson when installed), report bad lines;
- `filters`: the `show` filters, a cheap test on a line's bytes before the exact one on its record;
- `summary`: counts over a whole journal in one streaming pass;
- `scan`: how the summary reads a journal, a block of lines at a time (`columns`: the same
  fields of many lines at once, with numpy);
- `describe`: one readable line per record (`show` and `tail`);
- `explain`: one decision in plain words, with its clamps, orders and fills;
- `tail`: the last lines of a journal, and following it as it grows.

Every reader streams: a journal of a million lines is never held in memory as records.
"""
