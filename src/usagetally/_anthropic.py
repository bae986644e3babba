"""Interop with the official ``anthropic`` SDK (the ``usagetally[anthropic]`` extra).

Two kinds of help live here:

- Conversions between our :class:`~usagetally.BetaUsage` and the SDK's
  ``anthropic.types.beta.BetaUsage``, exact in both directions, unknown fields and unknown
  iteration types included.
- A real ``AsyncAnthropic`` client (:func:`anthropic_client_for`) or synchronous
  ``Anthropic`` client (:func:`anthropic_sync_client_for`) that answers every request with a
  recorded SSE transcript, so code built on the SDK can be tested end to end without a
  network (re-exported by ``usagetally.testing``), and :func:`sdk_final_usage`, the SDK's
  own reading of a transcript, which the tests use as a differential oracle.

usagetally does not depend on the SDK: ``anthropic`` (and ``httpx2``, its HTTP client) are
imported inside the functions, so this module imports without them and each function raises
:class:`ImportError` with an install hint when they are missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._converter import converter as _default_converter
from ._errors import LocalTypeError, check_argument_type
from ._install import install_hint
from ._models import BetaUsage

if TYPE_CHECKING:
    import cattrs
    import httpx2
    from anthropic import Anthropic, AsyncAnthropic
    from anthropic.types import Usage as SdkUsage
    from anthropic.types.beta import BetaUsage as SdkBetaUsage

__all__ = [
    "anthropic_client_for",
    "anthropic_sync_client_for",
    "from_sdk_usage",
    "sdk_final_usage",
    "to_sdk_usage",
]

_INSTALL_HINT = f"this needs the anthropic SDK; {install_hint('anthropic')}"


def _require_sdk() -> None:
    try:
        import anthropic  # noqa: F401
        import httpx2  # noqa: F401
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc


def to_sdk_usage(usage: BetaUsage, *, converter: cattrs.Converter | None = None) -> SdkBetaUsage:
    """Convert our usage into the SDK's ``anthropic.types.beta.BetaUsage``.

    The wire form of ``usage`` is validated by the SDK's pydantic model. When it holds what
    the SDK's types do not accept (an iteration ``type`` or a ``service_tier`` added after
    the SDK was released), the object is built the way the SDK builds API responses, without
    validation, so nothing is lost: unknown iteration types become instances of a known
    iteration class whose ``type`` is the one sent, and unknown fields are kept as pydantic
    extras. Either way ``to_dict(warnings=False)`` gives back the wire form exactly.

    Args:
        usage: The usage to convert.
        converter: The converter that gives the wire form (default: the lenient
            :data:`usagetally.converter`).

    Returns:
        An ``anthropic.types.beta.BetaUsage`` with the same wire form as ``usage``.

    Raises:
        ImportError: The anthropic SDK is not installed.

    >>> from usagetally import BetaUsage
    >>> sdk = to_sdk_usage(BetaUsage(input_tokens=12, output_tokens=3))
    >>> type(sdk).__module__, sdk.output_tokens
    ('anthropic.types.beta.beta_usage', 3)

    """
    check_argument_type(usage, BetaUsage, "to_sdk_usage(usage)")
    _require_sdk()
    import pydantic
    from anthropic.types.beta import BetaUsage as SdkBetaUsage

    conv = _default_converter if converter is None else converter
    wire: dict[str, Any] = conv.unstructure(usage)
    try:
        return SdkBetaUsage.model_validate(wire)
    except pydantic.ValidationError:
        # The SDK's own lenient construction, as applied to every API response.
        return SdkBetaUsage.model_construct(**wire)


def from_sdk_usage(
    obj: SdkBetaUsage | SdkUsage, *, converter: cattrs.Converter | None = None
) -> BetaUsage:
    """Convert the SDK's usage object into our :class:`~usagetally.BetaUsage`.

    Reads ``obj.to_dict(mode="json", warnings=False)``: the fields the API sent (or that
    were set), with the fields the SDK does not know kept and absent ones left out. Warnings
    are off because pydantic warns when it serializes an unknown iteration type that the SDK
    stored in a known class.

    Args:
        obj: An ``anthropic.types.beta.BetaUsage`` (such as ``message.usage`` of a message
            from ``client.beta.messages``) or an ``anthropic.types.Usage``.
        converter: The converter to structure with (default: the lenient
            :data:`usagetally.converter`; pass ``make_converter(strict=True)`` to refuse
            what this version of usagetally does not know).

    Returns:
        The usage, as our frozen attrs model.

    Raises:
        UsageValidationError: The SDK object holds a value that is not valid usage (such
            as a negative count), or, with a strict converter, an unknown field or type.
        ImportError: The anthropic SDK is not installed.

    >>> from anthropic.types.beta import BetaUsage as SdkBetaUsage
    >>> from_sdk_usage(SdkBetaUsage(input_tokens=12, output_tokens=3)).input_tokens
    12

    """
    _require_sdk()
    conv = _default_converter if converter is None else converter
    if not callable(getattr(obj, "to_dict", None)):
        raise LocalTypeError(
            f"from_sdk_usage(obj) must be an anthropic SDK usage, got {type(obj).__name__}"
        )
    wire = obj.to_dict(mode="json", warnings=False)
    result: BetaUsage = conv.structure(wire, BetaUsage)
    return result


def anthropic_client_for(
    transcript: bytes | Callable[[], bytes],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> AsyncAnthropic:
    r"""Build a real ``AsyncAnthropic`` client that answers every request with ``transcript``.

    The client is the SDK's own, with its own request building, SSE decoder and stream
    accumulation; only the network is replaced, by an ``httpx2.MockTransport``. Use it to
    test code that calls the SDK (``client.messages.stream(...)``,
    ``client.beta.messages.create(stream=True)``, ...) against a recorded or hand-written
    stream, such as the bundled ``examples/*.sse``. The client has ``api_key="test"`` and
    ``max_retries=0``, so an error status is raised at once instead of retried.

    Close it after use (``async with`` or ``await client.close()``).

    Args:
        transcript: The response body, sent for every request: SSE bytes exactly as the API
            sends them. Or a function returning those bytes, called once per request, to
            answer successive requests differently.
        status_code: The HTTP status of every response. With an error status the SDK raises
            its matching ``anthropic.APIStatusError`` subclass; pass a JSON error body as
            ``transcript`` and ``{"content-type": "application/json"}`` as ``headers``.
        headers: Response headers, added to (and overriding) the default
            ``content-type: text/event-stream``; for example ``{"request-id": "req_1"}``.

    Returns:
        An ``anthropic.AsyncAnthropic`` whose HTTP client never touches the network.

    Raises:
        ImportError: The anthropic SDK is not installed.

    Example:
        The code under test takes a client; the test hands it this one (here with a tiny
        transcript written inline):

        >>> import asyncio
        >>> transcript = (
        ...     b'event: message_start\n'
        ...     b'data: {"type":"message_start","message":{"id":"msg_1","type":"message",'
        ...     b'"role":"assistant","model":"claude-sonnet-4-6","content":[],'
        ...     b'"stop_reason":null,"stop_sequence":null,'
        ...     b'"usage":{"input_tokens":12,"output_tokens":1}}}\n\n'
        ...     b'event: content_block_start\n'
        ...     b'data: {"type":"content_block_start","index":0,'
        ...     b'"content_block":{"type":"text","text":""}}\n\n'
        ...     b'event: content_block_delta\n'
        ...     b'data: {"type":"content_block_delta","index":0,'
        ...     b'"delta":{"type":"text_delta","text":"Hello!"}}\n\n'
        ...     b'event: content_block_stop\n'
        ...     b'data: {"type":"content_block_stop","index":0}\n\n'
        ...     b'event: message_delta\n'
        ...     b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
        ...     b'"stop_sequence":null},"usage":{"output_tokens":5}}\n\n'
        ...     b'event: message_stop\n'
        ...     b'data: {"type":"message_stop"}\n\n'
        ... )
        >>> async def ask(client):  # the code under test
        ...     async with client.messages.stream(
        ...         model="claude-sonnet-4-6",
        ...         max_tokens=256,
        ...         messages=[{"role": "user", "content": "Hi"}],
        ...     ) as stream:
        ...         message = await stream.get_final_message()
        ...     return message.content[0].text, message.usage.output_tokens
        >>> async def test_ask():
        ...     async with anthropic_client_for(transcript) as client:
        ...         return await ask(client)
        >>> asyncio.run(test_ask())
        ('Hello!', 5)

    """
    _require_sdk()
    import anthropic
    import httpx2

    transport = _transport(transcript, status_code, headers)
    http_client = httpx2.AsyncClient(transport=transport)
    return anthropic.AsyncAnthropic(api_key="test", max_retries=0, http_client=http_client)


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


def anthropic_sync_client_for(
    transcript: bytes | Callable[[], bytes],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Anthropic:
    r"""Build a real synchronous ``Anthropic`` client that answers with ``transcript``.

    The synchronous twin of :func:`anthropic_client_for` (same arguments, same behaviour),
    for code that uses ``anthropic.Anthropic``. Close it after use (``with`` or
    ``client.close()``).

    Args:
        transcript: As :func:`anthropic_client_for`.
        status_code: As :func:`anthropic_client_for`.
        headers: As :func:`anthropic_client_for`.

    Returns:
        An ``anthropic.Anthropic`` whose HTTP client never touches the network.

    Raises:
        ImportError: The anthropic SDK is not installed.

    >>> from pathlib import Path
    >>> with anthropic_sync_client_for(Path("examples/plain.sse").read_bytes()) as client:
    ...     with client.beta.messages.stream(
    ...         model="claude-sonnet-4-6", max_tokens=256,
    ...         messages=[{"role": "user", "content": "Hi"}],
    ...     ) as stream:
    ...         message = stream.get_final_message()
    >>> message.usage.output_tokens
    42

    """
    _require_sdk()
    import anthropic
    import httpx2

    http_client = httpx2.Client(transport=_transport(transcript, status_code, headers))
    return anthropic.Anthropic(api_key="test", max_retries=0, http_client=http_client)


async def sdk_final_usage(transcript: bytes) -> dict[str, Any]:
    """Read a transcript with the SDK and return its final usage in wire form.

    Streams ``transcript`` through ``client.beta.messages.stream(...)`` on a client from
    :func:`anthropic_client_for` and returns
    ``(await stream.get_final_message()).usage.to_dict(mode="json", warnings=False)``: what
    the SDK's accumulator makes of the stream. The tests compare it with usagetally's result.
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

    """
    async with (
        anthropic_client_for(transcript) as client,
        client.beta.messages.stream(
            model="claude-sonnet-4-6",
            max_tokens=1024,
            messages=[{"role": "user", "content": "Hello"}],
        ) as stream,
    ):
        message = await stream.get_final_message()
    return message.usage.to_dict(mode="json", warnings=False)
