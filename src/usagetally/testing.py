"""Helpers for testing code that deals with Messages API usage: import them in your own tests.

Four kinds of help, each usable alone:

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

import contextlib
import json
import logging
import random
import re
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import anyio
import attrs

from . import _models
from ._converter import converter
from ._errors import LocalTypeError, LocalValueError, UsageDiagnostic
from ._install import install_hint
from ._wire import (
    CHILD_SHAPES,
    COUNT_FIELDS,
    DELTA_USAGE_FIELDS,
    FALLBACK_STATUS_CLASSES,
    ITERATION_CLASSES,
    SDK_CLASSES,
    model_fields,
)

if TYPE_CHECKING:
    import httpx2
    from anthropic import Anthropic, AsyncAnthropic

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

Event = dict[str, Any]
"""One stream event as its decoded JSON, such as ``{"type": "ping"}``."""

DEFAULT_MODEL = "claude-sonnet-4-6"
"""The model named by :func:`message_start` and :func:`text_stream` unless told otherwise."""

_DEFAULT_ADVISOR_MODEL = "claude-opus-4-7"

_CacheSplitArg = Mapping[str, Any] | _models.BetaCacheCreation | Literal["auto"] | None


# -- plain data ---------------------------------------------------------------------------


def _wire(value: Any) -> Any:
    """Plain JSON data of a value given to a builder (models become their wire form)."""
    if attrs.has(type(value)):
        return converter.unstructure(value)
    if isinstance(value, Mapping):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire(item) for item in value]
    return value


def _fields(**fields: Any) -> dict[str, Any]:
    """Return the given fields in order, those passed as None left out, values in wire form."""
    return {key: _wire(value) for key, value in fields.items() if value is not None}


def _split(cache_creation_arg: _CacheSplitArg, total: int | None) -> Any:
    if isinstance(cache_creation_arg, str):
        if cache_creation_arg != "auto":
            raise LocalValueError(
                f"cache_creation must be a mapping, None or 'auto', got {cache_creation_arg!r}"
            )
        return None if total is None else cache_creation(total, 0)
    return cache_creation_arg


# -- usage shapes -------------------------------------------------------------------------


def cache_creation(five_minutes: int = 0, one_hour: int = 0) -> dict[str, Any]:
    """Build a ``cache_creation`` object: the TTL split of the tokens written to the cache.

    Args:
        five_minutes: Tokens written to the 5-minute cache.
        one_hour: Tokens written to the 1-hour cache.

    Returns:
        ``{"ephemeral_5m_input_tokens": ..., "ephemeral_1h_input_tokens": ...}``.

    >>> cache_creation(100, 20)
    {'ephemeral_5m_input_tokens': 100, 'ephemeral_1h_input_tokens': 20}

    """
    return {"ephemeral_5m_input_tokens": five_minutes, "ephemeral_1h_input_tokens": one_hour}


def server_tool_use(
    *, web_search_requests: int = 0, web_fetch_requests: int = 0, **counts: Any
) -> dict[str, Any]:
    """Build a ``server_tool_use`` object: counts of server-tool requests.

    Args:
        web_search_requests: Web search requests.
        web_fetch_requests: Web fetch requests.
        **counts: Counts of other server tools, written as given (None leaves one out).

    Returns:
        The object as the wire sends it.

    >>> server_tool_use(web_search_requests=2)
    {'web_search_requests': 2, 'web_fetch_requests': 0}

    """
    return _fields(
        web_search_requests=web_search_requests, web_fetch_requests=web_fetch_requests, **counts
    )


def output_tokens_details(thinking_tokens: int, **fields: Any) -> dict[str, Any]:
    """Build an ``output_tokens_details`` object (sent on the final ``message_delta``).

    Args:
        thinking_tokens: Output tokens spent on extended thinking.
        **fields: Further fields, written as given (None leaves one out).

    Returns:
        The object as the wire sends it.

    >>> output_tokens_details(120)
    {'thinking_tokens': 120}

    """
    return _fields(thinking_tokens=thinking_tokens, **fields)


def fallback_credit(
    status: str = "redeemed",
    *,
    reason: str | None = None,
    remove_to_redeem: Iterable[str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Build a ``fallback_credit`` object, whose ``status`` is discriminated by its ``type``.

    Args:
        status: The status ``type``: ``"redeemed"``, ``"not_applied"`` or any other.
        reason: Why the credit was not applied (for ``"not_applied"``).
        remove_to_redeem: What to remove from the request to redeem the credit.
        **fields: Further fields of the status, written as given (None leaves one out).

    Returns:
        The object as the wire sends it.

    >>> fallback_credit()
    {'status': {'type': 'redeemed'}}
    >>> fallback_credit("not_applied", reason="tools", remove_to_redeem=["web_search"])
    {'status': {'type': 'not_applied', 'reason': 'tools', 'remove_to_redeem': ['web_search']}}

    """
    removals = None if remove_to_redeem is None else list(remove_to_redeem)
    return {"status": _fields(type=status, reason=reason, remove_to_redeem=removals, **fields)}


def _iteration(kind: str, **fields: Any) -> dict[str, Any]:
    return _fields(type=kind, **fields)


def message_iteration(
    *,
    input_tokens: int | None = 0,
    output_tokens: int | None = 0,
    cache_creation_input_tokens: int | None = 0,
    cache_read_input_tokens: int | None = 0,
    cache_creation: _CacheSplitArg = None,
    model: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Build an ``iterations`` entry of type ``message``: one sampling step of the executor.

    In a server-tool loop each turn is one such entry; after a fallback, each declined
    attempt is one.

    Args:
        input_tokens: Input tokens of the step.
        output_tokens: Output tokens of the step.
        cache_creation_input_tokens: Tokens written to the cache.
        cache_read_input_tokens: Tokens read from the cache.
        cache_creation: The entry's TTL split; ``"auto"`` puts every written token in the
            5-minute cache; None (default) leaves it out.
        model: The model of the step, left out by default.
        **fields: Further fields, written as given (None leaves one out).

    Returns:
        The entry as the wire sends it.

    >>> message_iteration(input_tokens=23000, output_tokens=1000)
    {'type': 'message', 'input_tokens': 23000, 'output_tokens': 1000,
     'cache_creation_input_tokens': 0, 'cache_read_input_tokens': 0}

    """
    return _iteration(
        "message",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_creation_input_tokens=cache_creation_input_tokens,
        cache_read_input_tokens=cache_read_input_tokens,
        cache_creation=_split(cache_creation, cache_creation_input_tokens),
        model=model,
        **fields,
    )


def compaction_iteration(
    *,
    input_tokens: int | None = 0,
    output_tokens: int | None = 0,
    cache_creation_input_tokens: int | None = 0,
    cache_read_input_tokens: int | None = 0,
    cache_creation: _CacheSplitArg = None,
    **fields: Any,
) -> dict[str, Any]:
    """Build an ``iterations`` entry of type ``compaction``: the summarizing call.

    Its tokens are billed but are not part of the top-level fields.

    Args:
        input_tokens: Input tokens of the summarizing call.
        output_tokens: Output tokens of the summary.
        cache_creation_input_tokens: Tokens written to the cache.
        cache_read_input_tokens: Tokens read from the cache.
        cache_creation: The entry's TTL split, as for :func:`message_iteration`.
        **fields: Further fields, written as given (None leaves one out).

    Returns:
        The entry as the wire sends it.

    >>> compaction_iteration(input_tokens=180000, output_tokens=3500)["type"]
    'compaction'

    """
    return _iteration(
        "compaction",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_creation_input_tokens=cache_creation_input_tokens,
        cache_read_input_tokens=cache_read_input_tokens,
        cache_creation=_split(cache_creation, cache_creation_input_tokens),
        **fields,
    )


def advisor_iteration(
    *,
    model: str | None = _DEFAULT_ADVISOR_MODEL,
    input_tokens: int | None = 0,
    output_tokens: int | None = 0,
    cache_creation_input_tokens: int | None = 0,
    cache_read_input_tokens: int | None = 0,
    cache_creation: _CacheSplitArg = None,
    **fields: Any,
) -> dict[str, Any]:
    """Build an ``iterations`` entry of type ``advisor_message``: one call to the advisor.

    Billed at the advisor model's rates and never part of the top-level fields.

    Args:
        model: The advisor model (default ``"claude-opus-4-7"``).
        input_tokens: Input tokens of the advisor call.
        output_tokens: Output tokens of the advisor call.
        cache_creation_input_tokens: Tokens written to the cache.
        cache_read_input_tokens: Tokens read from the cache.
        cache_creation: The entry's TTL split, as for :func:`message_iteration`.
        **fields: Further fields, written as given (None leaves one out).

    Returns:
        The entry as the wire sends it.

    >>> advisor_iteration(input_tokens=823, output_tokens=1612)
    {'type': 'advisor_message', 'model': 'claude-opus-4-7', 'input_tokens': 823,
     'output_tokens': 1612, 'cache_creation_input_tokens': 0, 'cache_read_input_tokens': 0}

    """
    return _iteration(
        "advisor_message",
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_creation_input_tokens=cache_creation_input_tokens,
        cache_read_input_tokens=cache_read_input_tokens,
        cache_creation=_split(cache_creation, cache_creation_input_tokens),
        **fields,
    )


def fallback_iteration(
    *,
    model: str | None = DEFAULT_MODEL,
    input_tokens: int | None = 0,
    output_tokens: int | None = 0,
    cache_creation_input_tokens: int | None = 0,
    cache_read_input_tokens: int | None = 0,
    cache_creation: _CacheSplitArg = None,
    **fields: Any,
) -> dict[str, Any]:
    """Build an ``iterations`` entry of type ``fallback_message``: the attempt that served.

    When present, the top-level fields describe only this attempt.

    Args:
        model: The model that served the response (default :data:`DEFAULT_MODEL`).
        input_tokens: Input tokens of the serving attempt.
        output_tokens: Output tokens of the serving attempt.
        cache_creation_input_tokens: Tokens written to the cache.
        cache_read_input_tokens: Tokens read from the cache.
        cache_creation: The entry's TTL split, as for :func:`message_iteration`.
        **fields: Further fields, written as given (None leaves one out).

    Returns:
        The entry as the wire sends it.

    >>> fallback_iteration(input_tokens=412, output_tokens=264)["model"]
    'claude-sonnet-4-6'

    """
    return _iteration(
        "fallback_message",
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_creation_input_tokens=cache_creation_input_tokens,
        cache_read_input_tokens=cache_read_input_tokens,
        cache_creation=_split(cache_creation, cache_creation_input_tokens),
        **fields,
    )


# -- events -------------------------------------------------------------------------------


def message_start(
    *,
    input_tokens: int | None = 25,
    output_tokens: int | None = 1,
    cache_creation_input_tokens: int | None = 0,
    cache_read_input_tokens: int | None = 0,
    cache_creation: _CacheSplitArg = "auto",
    model: str | None = DEFAULT_MODEL,
    service_tier: str | None = "standard",
    message_id: str = "msg_test",
    **usage_fields: Any,
) -> Event:
    """Build a ``message_start`` event, whose ``message.usage`` is the starting usage.

    Args:
        input_tokens: Input tokens.
        output_tokens: The placeholder output count the API sends at the start.
        cache_creation_input_tokens: Tokens written to the cache.
        cache_read_input_tokens: Tokens read from the cache.
        cache_creation: The TTL split. ``"auto"`` (default) puts every written token in the
            5-minute cache, so the split adds up; None leaves it out.
        model: The model named by the message.
        service_tier: The service tier.
        message_id: The message id.
        **usage_fields: Further usage fields (``speed``, ``inference_geo``,
            ``server_tool_use``, ``iterations``, unknown ones, ...), written as given.

    Returns:
        The event as the wire sends it.

    >>> event = message_start(input_tokens=100, cache_read_input_tokens=400, speed="fast")
    >>> event["message"]["usage"]
    {'input_tokens': 100, 'cache_creation_input_tokens': 0, 'cache_read_input_tokens': 400,
     'cache_creation': {'ephemeral_5m_input_tokens': 0, 'ephemeral_1h_input_tokens': 0},
     'output_tokens': 1, 'service_tier': 'standard', 'speed': 'fast'}

    """
    usage = _fields(
        input_tokens=input_tokens,
        cache_creation_input_tokens=cache_creation_input_tokens,
        cache_read_input_tokens=cache_read_input_tokens,
        cache_creation=_split(cache_creation, cache_creation_input_tokens),
        output_tokens=output_tokens,
        service_tier=service_tier,
        **usage_fields,
    )
    message = _fields(
        id=message_id,
        type="message",
        role="assistant",
        model=model,
    )
    message.update(content=[], stop_reason=None, stop_sequence=None, usage=usage)
    return {"type": "message_start", "message": message}


def message_delta(
    *,
    output_tokens: int | None,
    stop_reason: str | None = "end_turn",
    stop_sequence: str | None = None,
    **usage_fields: Any,
) -> Event:
    """Build a ``message_delta`` event; its usage counts are cumulative totals.

    Args:
        output_tokens: Output tokens so far (required by the wire; None leaves it out, to
            build a malformed event).
        stop_reason: The stop reason (written as null when None).
        stop_sequence: The stop sequence (written as null when None, as the API does).
        **usage_fields: Further usage fields the delta carries (``input_tokens``,
            ``cache_read_input_tokens``, ``iterations``, ``server_tool_use``,
            ``output_tokens_details``, ``fallback_credit``, unknown ones), written as
            given. Absent means absent: the value from before stands.

    Returns:
        The event as the wire sends it.

    >>> message_delta(output_tokens=42, cache_read_input_tokens=None)
    {'type': 'message_delta', 'delta': {'stop_reason': 'end_turn', 'stop_sequence': None},
     'usage': {'output_tokens': 42}}

    """
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
        "usage": _fields(output_tokens=output_tokens, **usage_fields),
    }


def message_stop() -> Event:
    """Build a ``message_stop`` event.

    Returns:
        ``{"type": "message_stop"}``.

    >>> message_stop()
    {'type': 'message_stop'}

    """
    return {"type": "message_stop"}


def ping() -> Event:
    """Build a ``ping`` event (it can come anywhere, any number of times).

    Returns:
        ``{"type": "ping"}``.

    >>> ping()
    {'type': 'ping'}

    """
    return {"type": "ping"}


def error_event(error_type: str = "overloaded_error", message: str = "Overloaded") -> Event:
    """Build an ``error`` event, which ends a stream mid-way.

    Args:
        error_type: The error's ``type``, such as ``"overloaded_error"`` or ``"api_error"``.
        message: The error's human message.

    Returns:
        The event as the wire sends it.

    >>> error_event()
    {'type': 'error', 'error': {'type': 'overloaded_error', 'message': 'Overloaded'}}

    """
    return {"type": "error", "error": {"type": error_type, "message": message}}


def content_block_start(content_block: Mapping[str, Any] | None = None, index: int = 0) -> Event:
    """Build a ``content_block_start`` event.

    Args:
        content_block: The block as the wire sends it (default: an empty text block).
        index: The block's index in the message content.

    Returns:
        The event as the wire sends it.

    >>> content_block_start()
    {'type': 'content_block_start', 'index': 0, 'content_block': {'type': 'text', 'text': ''}}

    """
    block = {"type": "text", "text": ""} if content_block is None else _wire(content_block)
    return {"type": "content_block_start", "index": index, "content_block": block}


def thinking_block_start(index: int = 0) -> Event:
    """Build the ``content_block_start`` of an extended-thinking block.

    Args:
        index: The block's index in the message content.

    Returns:
        The event as the wire sends it.

    >>> thinking_block_start()["content_block"]
    {'type': 'thinking', 'thinking': '', 'signature': ''}

    """
    return content_block_start({"type": "thinking", "thinking": "", "signature": ""}, index)


def tool_use_block_start(
    name: str = "get_weather",
    index: int = 0,
    *,
    tool_id: str | None = None,
    server: bool = False,
) -> Event:
    """Build the ``content_block_start`` of a tool call (client or server tool).

    Args:
        name: The tool's name (``"web_search"``, ``"advisor"``, ...  for server tools).
        index: The block's index in the message content.
        tool_id: The call's id (default ``toolu_test_<index>``, or ``srvtoolu_test_<index>``
            for a server tool).
        server: Build a ``server_tool_use`` block instead of a ``tool_use`` block.

    Returns:
        The event as the wire sends it; its input arrives by :func:`input_json_delta`.

    >>> tool_use_block_start("web_search", 1, server=True)["content_block"]
    {'type': 'server_tool_use', 'id': 'srvtoolu_test_1', 'name': 'web_search', 'input': {}}

    """
    kind = "server_tool_use" if server else "tool_use"
    if tool_id is None:
        tool_id = f"{'srvtoolu' if server else 'toolu'}_test_{index}"
    block = {"type": kind, "id": tool_id, "name": name, "input": {}}
    return content_block_start(block, index)


def content_block_delta(delta: Mapping[str, Any], index: int = 0) -> Event:
    """Build a ``content_block_delta`` event of any delta type.

    Args:
        delta: The delta as the wire sends it, with its ``type``.
        index: The index of the block it extends.

    Returns:
        The event as the wire sends it.

    >>> content_block_delta({"type": "citations_delta", "citation": {}}, 2)["index"]
    2

    """
    return {"type": "content_block_delta", "index": index, "delta": _wire(delta)}


def text_delta(text: str, index: int = 0) -> Event:
    """Build a ``content_block_delta`` adding text to a text block.

    Args:
        text: The text added.
        index: The index of the text block.

    Returns:
        The event as the wire sends it.

    >>> text_delta("Hello")
    {'type': 'content_block_delta', 'index': 0, 'delta': {'type': 'text_delta', 'text': 'Hello'}}

    """
    return content_block_delta({"type": "text_delta", "text": text}, index)


def thinking_delta(thinking: str, index: int = 0) -> Event:
    """Build a ``content_block_delta`` adding text to a thinking block.

    Args:
        thinking: The thinking text added.
        index: The index of the thinking block.

    Returns:
        The event as the wire sends it.

    >>> thinking_delta("Let me see.")["delta"]
    {'type': 'thinking_delta', 'thinking': 'Let me see.'}

    """
    return content_block_delta({"type": "thinking_delta", "thinking": thinking}, index)


def signature_delta(signature: str = "c2lnbmF0dXJl", index: int = 0) -> Event:
    """Build the ``content_block_delta`` carrying a thinking block's signature.

    Args:
        signature: The signature.
        index: The index of the thinking block.

    Returns:
        The event as the wire sends it.

    >>> signature_delta()["delta"]
    {'type': 'signature_delta', 'signature': 'c2lnbmF0dXJl'}

    """
    return content_block_delta({"type": "signature_delta", "signature": signature}, index)


def input_json_delta(partial_json: str, index: int = 0) -> Event:
    """Build a ``content_block_delta`` adding a piece of a tool call's JSON input.

    Args:
        partial_json: The piece of JSON text (any split of the whole input).
        index: The index of the tool-use block.

    Returns:
        The event as the wire sends it.

    >>> input_json_delta('{"city": "Par', 1)["delta"]
    {'type': 'input_json_delta', 'partial_json': '{"city": "Par'}

    """
    return content_block_delta({"type": "input_json_delta", "partial_json": partial_json}, index)


def content_block_stop(index: int = 0) -> Event:
    """Build a ``content_block_stop`` event.

    Args:
        index: The index of the block that ends.

    Returns:
        The event as the wire sends it.

    >>> content_block_stop(1)
    {'type': 'content_block_stop', 'index': 1}

    """
    return {"type": "content_block_stop", "index": index}


# Usage fields text_stream sends on the message_delta (besides the counts); the others are sent
# on message_start only.
_DELTA_FIELDS = frozenset(DELTA_USAGE_FIELDS) - frozenset(COUNT_FIELDS)


def text_stream(
    text_chunks: str | Iterable[str] = ("Hello", "!"),
    *,
    input_tokens: int | None = 25,
    output_tokens: int | None = 15,
    cache_creation_input_tokens: int | None = 0,
    cache_read_input_tokens: int | None = 0,
    cache_creation: _CacheSplitArg = "auto",
    model: str | None = DEFAULT_MODEL,
    service_tier: str | None = "standard",
    stop_reason: str | None = "end_turn",
    **usage_fields: Any,
) -> list[Event]:
    """Build a whole valid stream answering with text, in the order the API sends it.

    The events are ``message_start``, ``ping``, one text block (``content_block_start``, a
    ``text_delta`` per chunk, ``content_block_stop``; no block when there are no chunks),
    ``message_delta`` and ``message_stop``. The final usage of the stream has every usage
    argument as given: ``output_tokens`` arrives on the ``message_delta`` (``message_start``
    carries the placeholder 1), and so do ``server_tool_use``, ``output_tokens_details``,
    ``iterations`` and ``fallback_credit`` when given; every other field is sent on
    ``message_start``.

    Args:
        text_chunks: The text, as the chunks the deltas carry (a string is one chunk).
        input_tokens: Input tokens.
        output_tokens: The final output tokens.
        cache_creation_input_tokens: Tokens written to the cache.
        cache_read_input_tokens: Tokens read from the cache.
        cache_creation: The TTL split, as for :func:`message_start`.
        model: The model named by the message.
        service_tier: The service tier.
        stop_reason: The stop reason of the ``message_delta``.
        **usage_fields: Further usage fields, written as given.

    Returns:
        The events, a new list.

    >>> [event["type"] for event in text_stream(["Hi", " there"], output_tokens=3)]
    ['message_start', 'ping', 'content_block_start', 'content_block_delta',
     'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']

    """
    chunks = [text_chunks] if isinstance(text_chunks, str) else list(text_chunks)
    start_fields = {k: v for k, v in usage_fields.items() if k not in _DELTA_FIELDS}
    delta_fields = {k: v for k, v in usage_fields.items() if k in _DELTA_FIELDS}
    events = [
        message_start(
            input_tokens=input_tokens,
            cache_creation_input_tokens=cache_creation_input_tokens,
            cache_read_input_tokens=cache_read_input_tokens,
            cache_creation=cache_creation,
            model=model,
            service_tier=service_tier,
            **start_fields,
        ),
        ping(),
    ]
    if chunks:
        events.append(content_block_start())
        events.extend(text_delta(chunk) for chunk in chunks)
        events.append(content_block_stop())
    events.append(
        message_delta(output_tokens=output_tokens, stop_reason=stop_reason, **delta_fields)
    )
    events.append(message_stop())
    return events


# -- transcripts and chunkers -------------------------------------------------------------

_LINE_ENDINGS = ("\n", "\r\n", "\r")


def sse_bytes(events: Iterable[Mapping[str, Any]], line_ending: str = "\n") -> bytes:
    r"""Encode events as the ``text/event-stream`` body the API sends.

    Each event becomes an ``event:`` line naming its ``type`` (left out when it has none), a
    ``data:`` line with its compact JSON (UTF-8, not ASCII-escaped) and a blank line.

    Args:
        events: The events, such as those from the builders.
        line_ending: ``"\n"`` (default), ``"\r\n"`` or ``"\r"``; all three are valid SSE.

    Returns:
        The transcript.

    Raises:
        LocalValueError: ``line_ending`` is not one of the three.

    >>> sse_bytes([ping(), message_stop()])
    b'event: ping\ndata: {"type":"ping"}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n'
    >>> sse_bytes([ping()], line_ending="\r\n")
    b'event: ping\r\ndata: {"type":"ping"}\r\n\r\n'

    """
    if line_ending not in _LINE_ENDINGS:
        raise LocalValueError(f"line_ending must be '\\n', '\\r\\n' or '\\r', got {line_ending!r}")
    return b"".join(_encode_event(event, line_ending) for event in events)


def _encode_event(event: Mapping[str, Any], line_ending: str) -> bytes:
    data = json.dumps(_wire(event), separators=(",", ":"), ensure_ascii=False)
    kind = event.get("type")
    head = f"event: {kind}{line_ending}" if isinstance(kind, str) else ""
    return f"{head}data: {data}{line_ending}{line_ending}".encode()


def chunks_fixed(data: bytes, size: int) -> list[bytes]:
    """Split bytes into chunks of ``size`` bytes (the last one may be shorter).

    Args:
        data: The bytes to split.
        size: The chunk size, at least 1 (``1`` feeds byte by byte).

    Returns:
        The chunks, in order; an empty list for empty ``data``.

    Raises:
        LocalValueError: ``size`` is less than 1.

    >>> chunks_fixed(b"abcdefg", 3)
    [b'abc', b'def', b'g']

    """
    if size < 1:
        raise LocalValueError(f"size must be at least 1, got {size}")
    return [data[i : i + size] for i in range(0, len(data), size)]


def all_two_way_splits(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield every split of bytes in two: at each offset from 0 to ``len(data)``.

    Feeding both halves of each split to a fresh decoder must always give the same result;
    this is the classic way to find buffering bugs at a boundary.

    Args:
        data: The bytes to split.

    Yields:
        ``(data[:i], data[i:])`` for every ``i``, ``len(data) + 1`` pairs in all.

    >>> list(all_two_way_splits(b"ab"))
    [(b'', b'ab'), (b'a', b'b'), (b'ab', b'')]

    """
    for i in range(len(data) + 1):
        yield data[:i], data[i:]


def random_chunks(data: bytes, seed: int | str, max_size: int = 32) -> list[bytes]:
    r"""Split bytes into chunks of random sizes, reproducibly.

    Args:
        data: The bytes to split.
        seed: The seed of the random sizes: the same seed gives the same chunks.
        max_size: The largest chunk size (each is from 1 to ``max_size`` bytes).

    Returns:
        The chunks, in order; joined they give back ``data``.

    Raises:
        LocalValueError: ``max_size`` is less than 1.

    >>> chunks = random_chunks(b"event: ping\n\n", seed=7, max_size=4)
    >>> b"".join(chunks), all(1 <= len(c) <= 4 for c in chunks)
    (b'event: ping\n\n', True)
    >>> chunks == random_chunks(b"event: ping\n\n", seed=7, max_size=4)
    True

    """
    if max_size < 1:
        raise LocalValueError(f"max_size must be at least 1, got {max_size}")
    rng = random.Random(seed)
    chunks = []
    offset = 0
    while offset < len(data):
        size = rng.randint(1, max_size)
        chunks.append(data[offset : offset + size])
        offset += size
    return chunks


# -- sources ------------------------------------------------------------------------------


def _event_ends(data: bytes) -> list[int]:
    """Offsets where each event of a transcript ends (after its blank line).

    A trailing event without its blank line ends at ``len(data)``.
    """
    ends = []
    offset = 0
    pending = False
    for line in data.splitlines(keepends=True):
        offset += len(line)
        if line in (b"\n", b"\r\n", b"\r"):
            if pending:
                ends.append(offset)
                pending = False
        else:
            pending = True
    if pending:
        ends.append(len(data))
    return ends


class _ReplaySource:
    """The async iterator behind :func:`replay_source` (a class, so it needs no aclose)."""

    def __init__(
        self,
        pieces: list[bytes],
        fail_after: int | None,
        delay: float,
        exc: BaseException | Callable[[str], BaseException],
        fail_at: int | None,
    ) -> None:
        self._pieces = pieces
        self._next = 0
        self._fail_after = fail_after
        self._delay = delay
        self._exc = exc
        self._fail_at = fail_at

    def __aiter__(self) -> _ReplaySource:
        return self

    async def __anext__(self) -> bytes:
        await anyio.sleep(self._delay)
        if self._fail_after is not None and self._next == self._fail_after:
            exc = self._exc
            if not isinstance(exc, BaseException):
                exc = exc(f"replay_source failed at event {self._fail_at}, as asked")
            raise exc
        if self._next >= len(self._pieces):
            raise StopAsyncIteration
        piece = self._pieces[self._next]
        self._next += 1
        return piece

    async def aclose(self) -> None:
        """Stop the replay: the next read ends the iteration."""
        self._next = len(self._pieces)
        self._fail_after = None


def replay_source(
    data_or_events: bytes | Iterable[Mapping[str, Any]],
    *,
    chunk_size: int | None = None,
    delay: float = 0,
    fail_at: int | None = None,
    exc: BaseException | Callable[[str], BaseException] = ConnectionResetError,
) -> AsyncIterator[bytes]:
    r"""Replay a transcript as an async iterator of bytes, like a response body being read.

    Works on asyncio and trio (through anyio). Each chunk is preceded by
    ``anyio.sleep(delay)``, so even with no delay every read is a checkpoint where other
    tasks run and cancellation is delivered.

    Args:
        data_or_events: The transcript as bytes, or events (encoded with :func:`sse_bytes`).
        chunk_size: Split the transcript into chunks of this many bytes; by default each
            event is one chunk.
        delay: Seconds to wait before each chunk.
        fail_at: Raise ``exc`` instead of delivering event ``fail_at`` (0 is the first
            event): every byte before that event is delivered, none of it or after. A chunk
            that would straddle the boundary is cut there. ``fail_at`` equal to the number of
            events fails after the whole transcript.
        exc: The exception to raise: an instance, or an exception class (or any callable)
            called with a message (default :class:`ConnectionResetError`, like a dropped
            connection).

    Returns:
        An async iterator of bytes (it needs no closing).

    Raises:
        LocalValueError: ``chunk_size`` is less than 1, or ``fail_at`` is not between 0 and the
            number of events.

    >>> import anyio
    >>> async def read_all(source):
    ...     return [chunk async for chunk in source]
    >>> anyio.run(read_all, replay_source([ping(), message_stop()]))
    [b'event: ping\ndata: {"type":"ping"}\n\n',
     b'event: message_stop\ndata: {"type":"message_stop"}\n\n']
    >>> anyio.run(read_all, replay_source([ping(), message_stop()], fail_at=1))
    Traceback (most recent call last):
    ConnectionResetError: replay_source failed at event 1, as asked

    """
    if isinstance(data_or_events, (bytes, bytearray, memoryview)):
        data = bytes(data_or_events)
    else:
        data = sse_bytes(data_or_events)
    ends = _event_ends(data)
    if chunk_size is not None and chunk_size < 1:
        raise LocalValueError(f"chunk_size must be at least 1, got {chunk_size}")
    limit = len(data)
    if fail_at is not None:
        if not 0 <= fail_at <= len(ends):
            raise LocalValueError(
                f"fail_at must be between 0 and {len(ends)} (the number of events), got {fail_at}"
            )
        limit = ends[fail_at - 1] if fail_at > 0 else 0
    if chunk_size is None:
        bounds = [end for end in ends if end <= limit]
        if not bounds or bounds[-1] != limit:
            bounds.append(limit)
    else:
        bounds = [*range(chunk_size, limit, chunk_size), limit]
    pieces = []
    start = 0
    for end in bounds:
        if end > start:
            pieces.append(data[start:end])
        start = end
    return _ReplaySource(pieces, len(pieces) if fail_at is not None else None, delay, exc, fail_at)


def anthropic_client(
    transcript: bytes | Iterable[Mapping[str, Any]] | Callable[[], bytes],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> AsyncAnthropic:
    r"""Build a real ``anthropic.AsyncAnthropic`` client that answers with ``transcript``.

    Only the network is replaced (by an ``httpx2.MockTransport``): request building, the SSE
    decoder and the stream accumulation are the SDK's own, so code built on the SDK is tested
    end to end. The client has ``max_retries=0``. Close it after use (``async with``).

    Args:
        transcript: The response body of every request: SSE bytes, events (encoded with
            :func:`sse_bytes`), or a function returning bytes, called once per request.
        status_code: The HTTP status of every response.
        headers: Response headers added to ``content-type: text/event-stream``.

    Returns:
        An ``AsyncAnthropic`` client that never touches the network.

    Raises:
        ImportError: The anthropic SDK is not installed (it comes with the
            ``usagetally[anthropic]`` extra).

    >>> import anyio
    >>> async def main():
    ...     async with anthropic_client(text_stream("Hi!", output_tokens=4)) as client:
    ...         async with client.messages.stream(
    ...             model="claude-sonnet-4-6", max_tokens=64,
    ...             messages=[{"role": "user", "content": "Hello"}],
    ...         ) as stream:
    ...             message = await stream.get_final_message()
    ...     return message.content[0].text, message.usage.output_tokens
    >>> anyio.run(main)
    ('Hi!', 4)

    """
    _require_sdk()
    import anthropic
    import httpx2

    http_client = httpx2.AsyncClient(transport=_transport(_body(transcript), status_code, headers))
    return anthropic.AsyncAnthropic(api_key="test", max_retries=0, http_client=http_client)


def anthropic_sync_client(
    transcript: bytes | Iterable[Mapping[str, Any]] | Callable[[], bytes],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Anthropic:
    r"""Build a real synchronous ``anthropic.Anthropic`` client that answers with ``transcript``.

    The synchronous twin of :func:`anthropic_client`, with the same arguments, for code that
    uses ``anthropic.Anthropic``. Close it after use (``with``).

    Args:
        transcript: As :func:`anthropic_client`.
        status_code: As :func:`anthropic_client`.
        headers: As :func:`anthropic_client`.

    Returns:
        An ``Anthropic`` client that never touches the network.

    Raises:
        ImportError: The anthropic SDK is not installed.

    >>> with anthropic_sync_client(text_stream("Hi!", output_tokens=4)) as client:
    ...     with client.messages.stream(
    ...         model="claude-sonnet-4-6", max_tokens=64,
    ...         messages=[{"role": "user", "content": "Hello"}],
    ...     ) as stream:
    ...         message = stream.get_final_message()
    >>> message.content[0].text, message.usage.output_tokens
    ('Hi!', 4)

    """
    _require_sdk()
    import anthropic
    import httpx2

    http_client = httpx2.Client(transport=_transport(_body(transcript), status_code, headers))
    return anthropic.Anthropic(api_key="test", max_retries=0, http_client=http_client)


async def sdk_final_usage(transcript: bytes) -> dict[str, Any]:
    """Read a transcript with the SDK and return its final usage in wire form.

    Streams ``transcript`` through ``client.beta.messages.stream(...)`` on a client from
    :func:`anthropic_client` and returns
    ``(await stream.get_final_message()).usage.to_dict(mode="json", warnings=False)``: what
    the SDK's accumulator makes of the stream: a differential oracle, for a test to compare
    with usagetally's result.
    The SDK keeps the ``cache_creation`` split of ``message_start`` even when a
    ``message_delta`` changes ``cache_creation_input_tokens``.

    Args:
        transcript: SSE bytes exactly as the API sends them.

    Returns:
        The final usage as a JSON-compatible dict.

    Raises:
        ImportError: The anthropic SDK is not installed.
        anthropic.APIStatusError: The transcript holds an ``error`` event.
        Exception: Whatever the SDK raises on a stream it cannot read (such as a
            ``RuntimeError`` on events before ``message_start``).

    >>> import anyio
    >>> anyio.run(sdk_final_usage, sse_bytes(text_stream(output_tokens=4)))["output_tokens"]
    4

    """
    async with (
        anthropic_client(transcript) as client,
        client.beta.messages.stream(
            model="claude-sonnet-4-6",
            max_tokens=1024,
            messages=[{"role": "user", "content": "Hello"}],
        ) as stream,
    ):
        message = await stream.get_final_message()
    return message.usage.to_dict(mode="json", warnings=False)


def _require_sdk() -> None:
    try:
        import anthropic  # noqa: F401
        import httpx2  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"this needs the anthropic SDK; {install_hint('anthropic')}") from exc


def _transport(
    transcript: bytes | Callable[[], bytes], status_code: int, headers: Mapping[str, str] | None
) -> httpx2.MockTransport:
    import httpx2

    response_headers = {"content-type": "text/event-stream"}
    if headers is not None:
        response_headers.update({k.lower(): v for k, v in headers.items()})

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = transcript() if callable(transcript) else transcript
        return httpx2.Response(status_code, headers=response_headers, content=body)

    return httpx2.MockTransport(handler)


def _body(
    transcript: bytes | Iterable[Mapping[str, Any]] | Callable[[], bytes],
) -> bytes | Callable[[], bytes]:
    if isinstance(transcript, (bytes, bytearray, memoryview)):
        return bytes(transcript)
    if callable(transcript):
        return transcript
    return sse_bytes(transcript)


# -- comparing usages ---------------------------------------------------------------------


class _Absent:
    """The value of a field one side does not have."""

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()

_PATH_SEGMENT = r"[A-Za-z_][\w-]*(?:\[(?:\d+|\*)\])*"
_PATH = re.compile(rf"{_PATH_SEGMENT}(?:\.{_PATH_SEGMENT})*")


def _model_class(obj: object) -> type | None:
    """Our model class matching a usage object (ours or the SDK's), or None."""
    cls = type(obj)
    if cls.__module__ == _models.__name__ and attrs.has(cls):
        return cls
    if cls.__module__.split(".")[0] == "anthropic":
        return SDK_CLASSES.get(cls.__name__)
    return None


def _plain(value: Any) -> Any:
    """JSON data with every null dropped from objects, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _to_wire(obj: object, side: str) -> dict[str, Any]:
    if attrs.has(type(obj)):
        data: Any = converter.unstructure(obj)
    elif isinstance(obj, Mapping):
        data = obj
    elif callable(getattr(obj, "model_dump", None)):
        data = obj.model_dump(mode="json", by_alias=True, warnings=False)  # type: ignore[attr-defined]
    elif callable(getattr(obj, "to_dict", None)):
        data = obj.to_dict()  # type: ignore[attr-defined]
    else:
        raise LocalTypeError(
            f"{side} must be a usagetally model, an anthropic SDK model or a dict, "
            f"got {type(obj).__name__}"
        )
    if not isinstance(data, Mapping):
        raise LocalTypeError(f"{side} is not an object once converted, got {type(data).__name__}")
    result: dict[str, Any] = _plain(data)
    return result


def _class_of_wire(wire: Mapping[str, Any]) -> type:
    """Return the class a dict most likely is: an iteration entry if typed, else BetaUsage."""
    kind = wire.get("type")
    if isinstance(kind, str):
        return ITERATION_CLASSES.get(kind, _models.UnknownIterationUsage)
    return _models.BetaUsage


def _resolve(shape: type | str | None, exp: Any, act: Any) -> type | None:
    """Return the class giving the field order of an object (by its shape and ``type``)."""
    if not isinstance(shape, str):
        return shape
    table = ITERATION_CLASSES if shape == "iteration" else FALLBACK_STATUS_CLASSES
    unknown = (
        _models.UnknownIterationUsage
        if shape == "iteration"
        else _models.UnknownFallbackCreditStatus
    )
    for side in (exp, act):
        if isinstance(side, Mapping) and isinstance(side.get("type"), str):
            return table.get(side["type"], unknown)
    return unknown


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "<absent>"
    return repr(value)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


class _Differ:
    def __init__(self, ignore: Collection[str]) -> None:
        patterns = [ignore] if isinstance(ignore, str) else list(ignore)
        regexes = []
        for pattern in patterns:
            if not isinstance(pattern, str) or not _PATH.fullmatch(pattern):
                raise LocalValueError(
                    f"ignore paths look like 'cache_creation' or 'iterations[1].output_tokens' "
                    f"(or 'iterations[*].model'), got {pattern!r}"
                )
            regexes.append(re.escape(pattern).replace(r"\[\*\]", r"\[\d+\]"))
        self._ignore = re.compile(rf"(?:{'|'.join(regexes)})(?:$|[.\[])") if regexes else None
        self.lines: list[str] = []

    def ignored(self, path: str) -> bool:
        return self._ignore is not None and self._ignore.match(path) is not None

    def value(self, path: str, act: Any, exp: Any, shape: type | str | None) -> None:
        if self.ignored(path):
            return
        if isinstance(exp, Mapping) and isinstance(act, Mapping):
            self.object(path, act, exp, _resolve(shape, exp, act))
        elif isinstance(exp, list) and isinstance(act, list):
            self.list(path, act, exp, shape)
        elif not _same(act, exp):
            self.lines.append(f"{path or '<root>'}: expected {_show(exp)}, got {_show(act)}")

    def object(
        self, path: str, act: Mapping[str, Any], exp: Mapping[str, Any], cls: type | None
    ) -> None:
        known = model_fields(cls) if cls is not None else ()
        appearance: dict[str, int] = {}
        for key in (*exp, *act):
            appearance.setdefault(key, len(appearance))
        rank = {name: i for i, name in enumerate(known)}
        keys = sorted(appearance, key=lambda k: (rank.get(k, len(rank)), appearance[k]))
        for key in keys:
            child = CHILD_SHAPES.get(key) if key in rank else None
            self.value(
                f"{path}.{key}" if path else key,
                act.get(key, _ABSENT),
                exp.get(key, _ABSENT),
                child,
            )

    def list(self, path: str, act: list[Any], exp: list[Any], shape: type | str | None) -> None:
        if len(act) != len(exp):
            noun = "entry" if len(exp) == 1 else "entries"
            self.lines.append(f"{path or '<root>'}: expected {len(exp)} {noun}, got {len(act)}")
        for i, (a, e) in enumerate(zip(act, exp, strict=False)):
            self.value(f"{path}[{i}]", a, e, shape)


def usage_diff(actual: object, expected: object, *, ignore: Collection[str] = ()) -> list[str]:
    """Return the paths where two usages differ, one line each, in wire order.

    Both sides are compared in wire form: usagetally models as unstructured by
    :data:`usagetally.converter`, anthropic SDK models (anything with ``model_dump`` or
    ``to_dict``) as dumped, dicts as they are; a field that is ``None`` counts as absent.
    Fields are visited in the order of usagetally's models (unknown fields last), entries of
    lists by index.

    Args:
        actual: The usage the code under test produced.
        expected: The usage it should have produced.
        ignore: Paths to skip, such as ``"cache_creation"`` (a path skips everything under
            it), ``"iterations[1].output_tokens"`` or ``"iterations[*].model"`` (every
            entry). A single string is one path.

    Returns:
        Lines such as ``iterations[1].output_tokens: expected 450, got 451`` or
        ``cache_read_input_tokens: expected 12, got <absent>``; a list whose length
        differs gives ``iterations: expected 3 entries, got 2`` and then the differences of
        the entries both have. Empty when the usages are equal.

    Raises:
        LocalTypeError: A side is not a usage object or a mapping.
        LocalValueError: An ignore path is malformed.

    >>> usage_diff({"input_tokens": 10, "output_tokens": 5, "service_tier": None},
    ...            {"input_tokens": 10, "output_tokens": 6, "cache_read_input_tokens": 3})
    ['output_tokens: expected 6, got 5', 'cache_read_input_tokens: expected 3, got <absent>']

    """
    differ = _Differ(ignore)
    act = _to_wire(actual, "actual")
    exp = _to_wire(expected, "expected")
    cls = _model_class(expected) or _model_class(actual) or _class_of_wire(exp)
    differ.object("", act, exp, cls)
    return differ.lines


def assert_usage(actual: object, expected: object, *, ignore: Collection[str] = ()) -> None:
    """Assert that two usages are equal, listing every differing path when they are not.

    Accepts usagetally models, the anthropic SDK's models and dicts, on either side, and
    compares them in wire form (see :func:`usage_diff`): ``None`` equals absent.

    Args:
        actual: The usage the code under test produced.
        expected: The usage it should have produced.
        ignore: Paths to skip, as for :func:`usage_diff`.

    Raises:
        AssertionError: The usages differ; the message has one line per differing path.
        LocalTypeError: A side is not a usage object or a mapping.
        LocalValueError: An ignore path is malformed.

    >>> from usagetally import BetaUsage
    >>> assert_usage(BetaUsage(input_tokens=10, output_tokens=5),
    ...              {"input_tokens": 10, "output_tokens": 5, "speed": None})
    >>> assert_usage(BetaUsage(input_tokens=10, output_tokens=5, speed="fast"),
    ...              {"input_tokens": 12, "output_tokens": 5})
    Traceback (most recent call last):
    AssertionError: usage differs from expected:
      input_tokens: expected 12, got 10
      speed: expected <absent>, got 'fast'
    >>> assert_usage(BetaUsage(input_tokens=10, output_tokens=5, speed="fast"),
    ...              {"input_tokens": 10, "output_tokens": 5}, ignore=["speed"])

    """
    __tracebackhide__ = True
    lines = usage_diff(actual, expected, ignore=ignore)
    if lines:
        raise AssertionError("usage differs from expected:\n  " + "\n  ".join(lines))


@contextlib.contextmanager
def capture_diagnostics() -> Iterator[list[UsageDiagnostic]]:
    """Collect every diagnostic logged to the ``usagetally`` logger while the block runs.

    Diagnostics of every stream are logged (inconsistencies at WARNING, notes at INFO); this
    attaches a handler for the duration of the block, lowering the logger's level to INFO if
    needed, and restores both afterwards.

    Yields:
        The list the diagnostics are appended to, in the order they were logged.

    >>> from usagetally import UsageAccumulator
    >>> acc = UsageAccumulator()
    >>> with capture_diagnostics() as seen:
    ...     for event in [message_start(), message_delta(output_tokens=9),
    ...                   message_delta(output_tokens=4), message_stop()]:
    ...         acc.feed_event(event)
    >>> [d.code for d in seen]
    ['count_decreased']

    """
    seen: list[UsageDiagnostic] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            diagnostic = getattr(record, "usagetally_diagnostic", None)
            if isinstance(diagnostic, UsageDiagnostic):
                seen.append(diagnostic)

    logger = logging.getLogger("usagetally")
    handler = _Collect(logging.INFO)
    level = logger.level
    logger.addHandler(handler)
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
