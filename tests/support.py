"""The test support layer: the example streams, and the merge rule written out once.

Independent of ``src`` on purpose (it is an oracle): it reads the bundled examples as files and
applies docs/semantics.md, section 4, rule 2 to wire dicts, without the accumulator.

- :data:`EXAMPLES`, :data:`NAMES`, :func:`transcript`, :func:`expected`: the bundled example
  streams (``examples/*.sse``) and their expected final usage (``examples/expected/``).
- :func:`blocks` and :func:`example_events`: a transcript split into its events, insisting on
  the API's exact framing (``event: NAME\\ndata: JSON\\n\\n``).
- :func:`merge_wire` and :func:`reference_merge`: the merge rule. **The null rule lives here
  and only here**: an absent or ``null`` field keeps its value, at ``message_start`` as in a
  ``message_delta`` (so a null never overwrites, and the result holds no null, as the
  converter's wire form holds none).
- :func:`wire`: the wire form of a usage (None for None).
- :func:`pieces` and :func:`split_at`: a byte string cut at offsets, empty pieces kept (to feed
  a decoder empty chunks too) or dropped. ``usagetally.testing`` has the chunkers a user needs
  (fixed size, random, every two-way split); these are the ones for offsets drawn by
  Hypothesis.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from usagetally import converter

__all__ = [
    "EXAMPLES",
    "NAMES",
    "blocks",
    "example_events",
    "expected",
    "merge_wire",
    "pieces",
    "reference_merge",
    "split_at",
    "transcript",
    "wire",
]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = sorted(p.stem for p in EXAMPLES.glob("*.sse"))
_EVENT = re.compile(rb"event: ([a-z_]+)\ndata: ([^\n]*)\n\n")


def transcript(name: str) -> bytes:
    """The bytes of ``examples/<name>.sse``."""
    return (EXAMPLES / f"{name}.sse").read_bytes()


def expected(name: str) -> dict[str, Any]:
    """The expected final usage of an example, in wire form."""
    path = EXAMPLES / "expected" / f"{name}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def blocks(raw: bytes) -> list[tuple[str, str, bytes]]:
    """(event name, data, the block's bytes) for each event, insisting on the API's framing."""
    out = []
    pos = 0
    for match in _EVENT.finditer(raw):
        assert match.start() == pos, f"unexpected bytes at offset {pos}"
        pos = match.end()
        out.append((match.group(1).decode(), match.group(2).decode(), match.group(0)))
    assert pos == len(raw), f"trailing bytes at offset {pos}"
    return out


def example_events(name: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, decoded data) for each event of an example."""
    return [(event, json.loads(data)) for event, data, _ in blocks(transcript(name))]


def merge_wire(start: Mapping[str, Any], deltas: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The overwrite rule on wire dicts: each non-null field of each delta replaces."""
    state = {k: v for k, v in start.items() if v is not None}
    for delta in deltas:
        state.update({k: v for k, v in delta.items() if v is not None})
    return state


def reference_merge(events: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any] | None:
    """The usage of (event type, event JSON) pairs by the merge rule; None before a start."""
    start: Mapping[str, Any] | None = None
    deltas: list[Mapping[str, Any]] = []
    for name, data in events:
        if name == "message_start":
            start, deltas = data["message"]["usage"], []
        elif name == "message_delta":
            assert start is not None, "a message_delta before message_start"
            deltas.append(data["usage"])
    return None if start is None else merge_wire(start, deltas)


def wire(usage: Any) -> Any:
    """The wire form of a usage model (None for None)."""
    return None if usage is None else converter.unstructure(usage)


def pieces(stream: bytes, cuts: Sequence[int]) -> Iterator[bytes]:
    """``stream`` cut at the (sorted, in-range) offsets ``cuts``, empty pieces included."""
    start = 0
    for cut in sorted(cuts):
        yield stream[start:cut]
        start = cut
    yield stream[start:]


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (any order, duplicates and bounds allowed)."""
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    out, last = [], 0
    for point in points:
        out.append(data[last:point])
        last = point
    out.append(data[last:])
    return [piece for piece in out if piece]
