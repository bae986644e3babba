"""The size limits that keep hostile input linear in time and bounded in memory.

Every limit here is documented in docs/guarantees.md ("Limits"), and every input beyond one
is refused with a typed error naming where it is. The contract with the modules that use them:

- ``_accumulator.py`` calls :func:`check_event_json` on the data of every event it decodes
  (from bytes or :meth:`~usagetally.UsageAccumulator.feed_sse`) before ``json.loads``: past
  that check the decoder can neither recurse deeply nor build more than
  :data:`MAX_EVENT_VALUES` Python objects, whatever the event's size.
- ``_converter.py`` applies :data:`MAX_UNKNOWN_DEPTH`, :data:`MAX_UNKNOWN_FIELDS` and
  :data:`MAX_UNKNOWN_SIZE` to the unknown fields it keeps, so what a usage retains is bounded
  and can be printed or copied without deep recursion.

This module is pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "MAX_EVENT_DEPTH",
    "MAX_EVENT_VALUES",
    "MAX_UNKNOWN_DEPTH",
    "MAX_UNKNOWN_FIELDS",
    "MAX_UNKNOWN_SIZE",
    "check_event_json",
]

MAX_EVENT_DEPTH: Final = 64
"""Deepest nesting of an event's JSON (the event object is level 1). Real events nest 5."""

MAX_EVENT_VALUES: Final = 10_000
"""Most JSON values in one event's data, counted as commas plus opening brackets (outside
strings) plus one: an upper bound of the number of values. Real events hold at most 70."""

MAX_UNKNOWN_DEPTH: Final = 32
"""Deepest nesting of the value of one unknown field (a scalar is 0, ``[]`` is 1)."""

MAX_UNKNOWN_FIELDS: Final = 64
"""Most unknown fields one usage object keeps (for a stream's top level: over all its events)."""

MAX_UNKNOWN_SIZE: Final = 1 << 20
"""Most characters of compact JSON that the unknown fields of one usage object hold together
(for a stream's top level: the values it keeps, over all its events)."""

# A JSON string, escapes included; what is left when they are removed has brackets, commas
# and colons only where they are structure.
_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_SQUARE: Final = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS: Final = bytes(set(range(256)) - set(b"[]{}"))
_TOO_DEEP: Final = b"[" * (MAX_EVENT_DEPTH + 1)
_TOKEN: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}:,]')


def check_event_json(data: str) -> tuple[str, str | None] | None:
    """Check that decoding ``data`` as JSON is shallow and small enough to be safe.

    Costs a few C-speed passes over ``data``, never a Python loop per character: two counts
    when the data is plainly within the limits (every real event), else a pass that drops
    the strings and a few passes over what brackets are left.

    Args:
        data: An event's data, before ``json.loads``.

    Returns:
        None when ``data`` is within :data:`MAX_EVENT_DEPTH` and :data:`MAX_EVENT_VALUES`
        (or is not JSON at all: ``json.loads`` then says why), else ``(problem, path)``: what
        is wrong and, for nesting, the JSON path of the first value too deep.

    """
    if len(data) <= MAX_EVENT_DEPTH:
        return None
    opens = data.count("[") + data.count("{")
    if opens <= MAX_EVENT_DEPTH and opens + data.count(",") < MAX_EVENT_VALUES:
        return None
    bare = _STRING.sub("", data)
    opens = bare.count("[") + bare.count("{")
    values = opens + bare.count(",") + 1
    if opens > MAX_EVENT_DEPTH:
        # The brackets alone, all made square (UTF-8 never puts a bracket byte inside a
        # multi-byte character).
        encoded = bare.encode("utf-8", "surrogatepass")
        del bare  # at most two copies of the data alive at once
        brackets = encoded.translate(_SQUARE, _NOT_BRACKETS)
        del encoded
        if values > MAX_EVENT_VALUES:
            deep = _TOO_DEEP in brackets  # refused anyway: only say why the better way
        else:
            deep = len(brackets) <= 2 * opens and _deeper_than_limit(brackets)
        if deep:
            return f"the JSON nests deeper than {MAX_EVENT_DEPTH} levels", _path_at_depth(data)
    if values > MAX_EVENT_VALUES:
        return f"the JSON holds more than {MAX_EVENT_VALUES:,} values", None
    return None


def _deeper_than_limit(brackets: bytes) -> bool:
    # The innermost pairs removed a level at a time (replace() works on the string as it was,
    # so one call removes exactly the pairs that are adjacent): after MAX_EVENT_DEPTH rounds
    # anything left nests deeper. A round that removes nothing means mismatched brackets:
    # not JSON, which json.loads reports. At most 2 * MAX_EVENT_VALUES bytes, so cheap.
    for _ in range(MAX_EVENT_DEPTH):
        inner = brackets.replace(b"[]", b"")
        if not inner or len(inner) == len(brackets):
            return False
        brackets = inner
    return True


def _path_at_depth(data: str) -> str:
    """Return the JSON path of the first container of ``data`` nested too deep.

    Only called once a stream is refused; its loop is bounded by the number of tokens before
    that container (at most a few per JSON value).
    """
    steps: list[str] = []  # the path step of each open container but the outermost
    kinds: list[bool] = []  # per open container: is it an object
    indices: list[int] = []  # per open container: the index of the current item
    key: str | None = None  # the key awaiting its value, in the innermost object
    for match in _TOKEN.finditer(data):
        token = match.group()
        if token in "[{":
            if kinds:
                steps.append(_key_step(key) if kinds[-1] else f"[{indices[-1]}]")
            kinds.append(token == "{")
            indices.append(0)
            key = None
            if len(kinds) > MAX_EVENT_DEPTH:
                break
        elif token in "]}":
            if not kinds:
                break
            kinds.pop()
            indices.pop()
            if steps:
                steps.pop()
            key = None
        elif token == ",":
            if indices:
                indices[-1] += 1
            key = None
        elif token != ":" and kinds and kinds[-1] and key is None:
            key = token
    return "".join(steps).lstrip(".")


def _key_step(token: str | None) -> str:
    # A key as a path step, from its JSON text: bare when unambiguous, else the literal quoted.
    if token is None:
        return "[?]"
    name = token[1:-1]
    if name and name.isprintable() and not any(c in name for c in ".[]\"' \\"):
        return f".{name}"
    return f"[{token}]"
