"""The builders: the events of a Messages stream and the usage shapes, as plain wire JSON.

Import them from :mod:`usagetally.testing`, which re-exports them and states the rules they
keep (``None`` leaves a field out, models are written in wire form, extra keyword arguments
go into ``usage`` as they are). :func:`wire_form` is the package's one conversion of a value
to plain data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from .. import _models
from .._converter import default_converter
from .._errors import LocalValueError
from .._wire import COUNT_FIELDS, DELTA_USAGE_FIELDS

# Event and DEFAULT_MODEL are documented where they are public, in usagetally.testing.
Event = dict[str, Any]

DEFAULT_MODEL = "claude-sonnet-4-6"

_DEFAULT_ADVISOR_MODEL = "claude-opus-4-7"

_CacheSplitArg = Mapping[str, Any] | _models.BetaCacheCreation | Literal["auto"] | None


# -- plain data ---------------------------------------------------------------------------


def wire_form(value: Any) -> Any:
    """Plain JSON data of a value given to a builder (models become their wire form).

    Shared with :mod:`._transcripts`, which writes events given with models in them.
    """
    if attrs.has(type(value)):
        return default_converter().unstructure(value)
    if isinstance(value, Mapping):
        return {key: wire_form(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [wire_form(item) for item in value]
    return value


def _fields(**fields: Any) -> dict[str, Any]:
    """Return the given fields in order, those passed as None left out, values in wire form."""
    return {key: wire_form(value) for key, value in fields.items() if value is not None}


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
    block = {"type": "text", "text": ""} if content_block is None else wire_form(content_block)
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
    return {"type": "content_block_delta", "index": index, "delta": wire_form(delta)}


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
