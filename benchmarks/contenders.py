"""The contenders of ``benchmarks/run.py``: what users would use instead of usagetally, and it.

Each contender takes a workload of ``benchmarks/workloads.py`` and returns its final usage in
wire form (a dict), except the floors, which parse nothing. ``benchmarks/README.md`` says what
each one times. :func:`contenders` is the list the runner times on every workload,
:func:`sweep_contenders` the one of the long-line sweep; :data:`MEMORY_CONTENDERS` are those
measured on the 200 MB stream (``benchmarks/memory.py``).
"""

from __future__ import annotations

import codecs
import importlib
import importlib.util
import json
import sys
import types
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import targets as issue16
from workloads import Workload, long_line

import usagetally

if TYPE_CHECKING:
    from anthropic.types.beta import BetaMessageParam

MODEL = "claude-sonnet-4-6"
MESSAGES: list[BetaMessageParam] = [{"role": "user", "content": "Tell me about the migration."}]


def ut_feed(w: Workload) -> dict[str, Any]:
    return feed_chunks(w.chunks)


def feed_chunks(chunks: Iterable[bytes]) -> dict[str, Any]:
    acc = usagetally.UsageAccumulator()
    feed = acc.feed
    for chunk in chunks:
        feed(chunk)
    return wire(acc.finish())


async def byte_source(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    """The chunks as an async byte source, as ``accumulate`` and the SDK's transport read it."""
    for chunk in chunks:
        yield chunk


async def ut_accumulate(w: Workload) -> dict[str, Any]:
    return wire(await usagetally.accumulate(byte_source(w.chunks)))


async def accumulate_chunks(chunks: Iterable[bytes]) -> dict[str, Any]:
    return wire(await usagetally.accumulate(byte_source(chunks)))


def wire(usage: usagetally.BetaUsage) -> dict[str, Any]:
    """The wire form of a final usage, as every contender returns it."""
    out: dict[str, Any] = usagetally.converter.unstructure(usage)
    return out


def httpx_sse_json(w: Workload) -> dict[str, Any]:
    return httpx_sse_chunks(w.chunks)


def httpx_sse_decoders() -> Any:
    """httpx-sse's ``_decoders`` module (its line decoder and its event decoder).

    httpx-sse's package ``__init__`` imports httpx, which this project does not install
    (the SDK uses httpx2), and the decoders need nothing of it. Without httpx the module is
    loaded from httpx-sse's own files under a private package name, so ``httpx_sse`` itself
    is never replaced in ``sys.modules``.
    """
    try:
        from httpx_sse import _decoders
    except ImportError:
        private = "_bench_httpx_sse"
        if private not in sys.modules:
            spec = importlib.util.find_spec("httpx_sse")
            if spec is None or not spec.submodule_search_locations:
                raise
            package = types.ModuleType(private)
            package.__path__ = list(spec.submodule_search_locations)
            sys.modules[private] = package
        _decoders = importlib.import_module(private + "._decoders")
    return _decoders


def httpx_sse_chunks(chunks: Iterable[bytes]) -> dict[str, Any]:
    """httpx-sse's own decoders (UTF-8 text, lines, events), json.loads of every event."""
    decoders = httpx_sse_decoders()
    text = codecs.getincrementaldecoder("utf-8")("replace")
    lines = decoders.SSELineDecoder()
    events = decoders.SSEDecoder()
    usage: dict[str, Any] = {}
    for chunk in chunks:
        for line in lines.decode(text.decode(chunk)):
            sse = events.decode(line)
            if sse is None:
                continue
            event = json.loads(sse.data)
            kind = event.get("type")
            if kind == "message_start":
                usage = dict(event["message"]["usage"])
            elif kind == "message_delta":
                usage.update((k, v) for k, v in event["usage"].items() if v is not None)
    for line in lines.flush():
        events.decode(line)
    return usage


def floor_split(w: Workload) -> int:
    return len(w.data.split(b"\n\n"))


def floor_count(w: Workload) -> int:
    return issue16.scan_floor(w.chunks)


def handwritten(w: Workload) -> dict[str, Any]:
    return issue16.handwritten(w.chunks)


class SdkClients:
    """One ``AsyncAnthropic`` over ``httpx2.MockTransport`` serving the current workload.

    Like ``usagetally.testing.anthropic_client`` but the body is sent in the workload's
    chunks (64 KiB, or 1 KiB for the long lines), as every other contender reads it.
    """

    def __init__(self) -> None:
        import anthropic  # imported here: the memory subprocesses do without it
        import httpx2

        self.chunks: list[bytes] = []

        def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(
                200,
                headers={"content-type": "text/event-stream"},
                content=byte_source(self.chunks),
            )

        http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
        self.client = anthropic.AsyncAnthropic(api_key="bench", max_retries=0, http_client=http)

    async def stream_final_message(self, w: Workload) -> dict[str, Any]:
        self.chunks = w.chunks
        async with self.client.beta.messages.stream(
            model=MODEL,
            max_tokens=64_000,
            messages=MESSAGES,
        ) as stream:
            message = await stream.get_final_message()
        return message.usage.to_dict(mode="json", warnings=False)

    async def create_stream(self, w: Workload) -> dict[str, Any]:
        self.chunks = w.chunks
        stream = await self.client.beta.messages.create(
            model=MODEL,
            max_tokens=64_000,
            messages=MESSAGES,
            stream=True,
        )
        usage: dict[str, Any] = {}
        async with stream:
            async for event in stream:
                if event.type == "message_start":
                    usage = event.message.usage.to_dict(mode="json", warnings=False)
                elif event.type == "message_delta":
                    delta = event.usage.to_dict(mode="json", warnings=False)
                    usage.update((k, v) for k, v in delta.items() if v is not None)
        return usage

    async def aclose(self) -> None:
        await self.client.close()


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    call: Callable[[Workload], Any]
    is_async: bool = False
    returns_usage: bool = True


FEED = Contender("feed", "usagetally `UsageAccumulator.feed` + `finish`", ut_feed)
HTTPX_SSE = Contender("httpx-sse", "httpx-sse decoder + `json.loads` + merge", httpx_sse_json)
FLOOR = Contender("floor", "floor: `bytes.split(b'\\n\\n')`", floor_split, returns_usage=False)
HANDWRITTEN = Contender(
    "handwritten",
    "practical floor: a hand-written accumulator for canonical streams (`benchmarks/targets.py`)",
    handwritten,
)
SCAN = Contender(
    "scan", "scan floor: `bytes.count(b'\\n')` per chunk", floor_count, returns_usage=False
)


def contenders(sdk: SdkClients) -> list[Contender]:
    return [
        FEED,
        Contender(
            "accumulate", "usagetally `accumulate` (async bytes)", ut_accumulate, is_async=True
        ),
        Contender(
            "sdk-stream",
            "SDK `beta.messages.stream()` + `get_final_message()`",
            sdk.stream_final_message,
            is_async=True,
        ),
        Contender(
            "sdk-create",
            "SDK `beta.messages.create(stream=True)`, merged by hand",
            sdk.create_stream,
            is_async=True,
        ),
        HTTPX_SSE,
        HANDWRITTEN,
        FLOOR,
        SCAN,
    ]


REFERENCE = "feed"


def join_chunks(w: Workload) -> int:
    return len(b"".join(w.chunks))


def sweep_contenders() -> list[Contender]:
    """What the long-line sweep times: usagetally, httpx-sse, and joining the chunks."""
    return [
        FEED,
        HTTPX_SSE,
        Contender("join", "`b''.join(chunks)`, nothing parsed", join_chunks, returns_usage=False),
    ]


def sweep_workloads(scale: float) -> list[Workload]:
    base = max(16 * 1024, int(1024 * 1024 * scale))
    return [long_line(base * k) for k in (1, 2, 4, 8)]


MEMORY_CONTENDERS = ("feed", "accumulate", "httpx-sse")
