"""The anthropic SDK's event objects, recognised by shape and read as the wire's JSON.

The contract (used by the accumulator's :meth:`~usagetally.UsageAccumulator.feed_event` and by
the feeding machinery of ``_feeding.py``):

- An SDK event is any object with a ``type`` string and a ``to_dict()`` or ``model_dump()``
  method (:func:`is_sdk_event`). It is read by its ``type``, never by its class: the SDK
  builds unknown event types as instances of known classes.
- :func:`wire_form` returns its wire form: the fields sent, unknown ones kept, absent ones
  left out.
- :func:`as_event_mapping` turns it into what ``feed_event`` reads: the whole wire form for
  the events that carry usage (:data:`USAGE_EVENTS`), :data:`MESSAGE_STOP` for
  ``message_stop`` (the stream helper's carries the whole message, which is not read), and
  ``{"type": ...}`` for any other.

The SDK is never imported. Pure: no I/O, no anyio.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _wire

__all__ = ["MESSAGE_STOP", "USAGE_EVENTS", "as_event_mapping", "is_sdk_event", "wire_form"]

USAGE_EVENTS = frozenset({*_wire.USAGE_EVENTS, _wire.ERROR_EVENT})
"""The event types whose wire form is read whole."""

MESSAGE_STOP: Mapping[str, Any] = {"type": _wire.STOP_EVENT}
"""What ``message_stop`` is fed as."""


def wire_form(obj: Any) -> Mapping[str, Any]:
    """Return an SDK object's wire form: the fields sent, unknown ones kept, absent left out.

    Args:
        obj: An SDK model (``to_dict()`` or pydantic's ``model_dump()``).

    Returns:
        Its fields as the wire's JSON.

    """
    to_dict = getattr(obj, "to_dict", None)
    if to_dict is not None:
        try:
            # warnings=False: pydantic warns on unknown iteration types held in known classes.
            result: Mapping[str, Any] = to_dict(warnings=False)
        except TypeError:
            result = to_dict()
        return result
    dump = obj.model_dump
    try:
        result = dump(by_alias=True, exclude_unset=True, warnings=False)
    except TypeError:
        result = dump()
    return result


def is_sdk_event(obj: Any) -> bool:
    """Return whether ``obj`` has the shape of an SDK event object.

    Args:
        obj: Anything.

    Returns:
        True for an object with a ``type`` string and ``to_dict()`` or ``model_dump()``.

    """
    return isinstance(getattr(obj, "type", None), str) and (
        hasattr(obj, "to_dict") or hasattr(obj, "model_dump")
    )


def as_event_mapping(event: object) -> Mapping[str, Any] | None:
    """Return an event as the mapping :meth:`UsageAccumulator.feed_event` reads.

    Args:
        event: A mapping (returned as it is) or an anthropic SDK event object (anything with
            a ``type`` string and a ``to_dict()`` or ``model_dump()`` method).

    Returns:
        The mapping; for an SDK object, its wire form when it is ``message_start``,
        ``message_delta`` or ``error``, else ``{"type": ...}`` alone (the other events carry
        no usage, so nothing else of them is read). None when ``event`` is neither.

    """
    if isinstance(event, Mapping):
        return event
    if not is_sdk_event(event):
        return None
    kind: str = event.type  # type: ignore[attr-defined]
    if kind in USAGE_EVENTS:
        return wire_form(event)
    if kind == "message_stop":
        return MESSAGE_STOP
    return {"type": kind}
