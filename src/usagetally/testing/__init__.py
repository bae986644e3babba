"""Helpers for testing code that deals with Messages API usage: import them in your own tests.

Five kinds of help, each usable alone:

- **Builders** return the events of a Messages stream as the wire's JSON (plain dicts), with
  defaults so a test states only what it cares about: :func:`message_start`,
  :func:`message_delta`, :func:`message_stop`, :func:`ping`, :func:`error_event`, the
  ``content_block_*`` events and their deltas, the usage shapes (:func:`cache_creation`,
  :func:`server_tool_use`, ...) and the entries of ``iterations``
  (:func:`message_iteration`, :func:`compaction_iteration`, :func:`advisor_iteration`,
  :func:`fallback_iteration`). :func:`text_stream` builds a whole valid stream in one call.
- **Transcripts**: :func:`sse_bytes` turns events into the bytes the API sends, and the
  chunkers (:func:`chunks_fixed`, :func:`all_two_way_splits`, :func:`random_chunks`) split
  them the way a network might.
- **Sources**: :func:`replay_source` replays a transcript as an async iterator of bytes (with
  delays, or a failure at a chosen event), and :func:`anthropic_client` gives a real
  ``AsyncAnthropic`` client that answers every request with a transcript.
- **Diagnostics**: :func:`capture_diagnostics` collects the diagnostics logged while a block
  runs, from every stream.
- **Assertions**: :func:`assert_usage` compares usages of any origin (usagetally's models, the
  anthropic SDK's models, dicts) and, on a mismatch, lists every differing path;
  :func:`usage_diff` returns those lines.

The pytest plugin that comes with usagetally offers the same as fixtures and makes a plain
``assert usage == expected`` between usage objects show the path-by-path difference.

Rules the builders keep:

- A keyword argument passed as ``None`` leaves its field out of the event: absent means
  absent. To send an explicit ``null``, edit the returned dict.
- Values may be given as plain data or as usagetally models (they are written in wire form).
- Extra keyword arguments (``**usage_fields``) go into the event's ``usage`` as they are, so
  fields this version does not know can be built too.
"""

from __future__ import annotations

from typing import TypeAlias

from . import _builders
from ._builders import (
    advisor_iteration,
    cache_creation,
    compaction_iteration,
    content_block_delta,
    content_block_start,
    content_block_stop,
    error_event,
    fallback_credit,
    fallback_iteration,
    input_json_delta,
    message_delta,
    message_iteration,
    message_start,
    message_stop,
    output_tokens_details,
    ping,
    server_tool_use,
    signature_delta,
    text_delta,
    text_stream,
    thinking_block_start,
    thinking_delta,
    tool_use_block_start,
)
from ._diagnostics import (
    capture_diagnostics,
)
from ._diff import (
    assert_usage,
    usage_diff,
)
from ._sources import (
    anthropic_client,
    anthropic_sync_client,
    replay_source,
    sdk_final_usage,
)
from ._transcripts import (
    all_two_way_splits,
    chunks_fixed,
    random_chunks,
    sse_bytes,
)

__all__ = [
    "DEFAULT_MODEL",
    "Event",
    "advisor_iteration",
    "all_two_way_splits",
    "anthropic_client",
    "anthropic_sync_client",
    "assert_usage",
    "cache_creation",
    "capture_diagnostics",
    "chunks_fixed",
    "compaction_iteration",
    "content_block_delta",
    "content_block_start",
    "content_block_stop",
    "error_event",
    "fallback_credit",
    "fallback_iteration",
    "input_json_delta",
    "message_delta",
    "message_iteration",
    "message_start",
    "message_stop",
    "output_tokens_details",
    "ping",
    "random_chunks",
    "replay_source",
    "sdk_final_usage",
    "server_tool_use",
    "signature_delta",
    "sse_bytes",
    "text_delta",
    "text_stream",
    "thinking_block_start",
    "thinking_delta",
    "tool_use_block_start",
    "usage_diff",
]

# Defined in _builders (which uses them) and bound here, where Sphinx reads their docstrings.
Event: TypeAlias = _builders.Event
"""One stream event as its decoded JSON, such as ``{"type": "ping"}``."""

DEFAULT_MODEL = _builders.DEFAULT_MODEL
"""The model named by :func:`message_start` and :func:`text_stream` unless told otherwise."""
