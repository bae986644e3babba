"""Fleet totals through a real Prometheus server, asked by PromQL (``make e2e-prometheus``).

A worker process (``fleet.py``) replays a few hundred streams through a ``UsageWorker`` whose
``otel_hook`` records the billed tokens and the cost with the OpenTelemetry SDK and its
Prometheus exporter. A real Prometheus server (``prometheus`` on PATH; ``make
e2e-prometheus`` installs Debian's package first, with tools/install-prometheus) scrapes
it, on 127.0.0.1 only, with its own configuration and storage in a temporary folder. The
test asks Prometheus, over its HTTP API, for billed tokens and cost per model, and checks
them against the sum of the worker's per-stream results, after each of two rounds of
streams (so the counters are checked across scrapes, as a fleet's are).

- Tokens are checked exactly: integer counts are exact in a float64 below 2**53.
- Cost is a float from the counter on (docs/otel.md): each stream's exact ``Decimal`` cost
  per model is turned into a float once, the SDK adds the floats (in groups that depend on
  when the scrapes came), and Prometheus adds the series of a model. Every value is written
  and read as the shortest decimal that reads back to the same float, so nothing else
  rounds. For ``n`` non-negative amounts, ``n`` conversions and at most ``n - 1`` additions,
  each off by at most half an ulp (relative ``u = 2**-53``), the float result is within
  ``gamma(n + 1) * S`` of the exact sum ``S``, where ``gamma(m) = m*u / (1 - m*u)`` (the
  classic bound for floating-point summation, whatever the order). The test asserts that
  bound, and that it is smaller than the cost of one token at the cheapest rate of the table,
  so one token counted wrong in any stream would fail it.
- The wait is deterministic: after the worker reports a round done, the test polls until
  the latest ``usagetally_streams_total`` samples come from a scrape begun after that
  moment (their timestamps; the worker and Prometheus share this machine's clock), with a
  timeout, never a fixed sleep; then it asks every query at that scrape's time, so all the
  figures come from that one scrape.

Deselected from the plain ``make test`` by the ``e2e`` marker (it needs the server, which
needs root to install); ``make e2e-prometheus`` selects it, and there a missing server is a
failure, not a skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from decimal import Decimal, localcontext
from pathlib import Path
from typing import IO, Any

import pytest
from fleet import PRICES, UNLISTED, Stream, build_streams

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
STREAMS = 300
SEED = 14
ROUNDS = [(0, 150), (150, STREAMS)]
TIMEOUT = 60.0  # seconds, for each wait on a process or a scrape
POLL = 0.1  # seconds between polls
SCRAPE_INTERVAL = "500ms"

# The Prometheus names of the instruments (docs/otel.md, "Scraped directly"), as the
# OpenTelemetry Prometheus exporter writes them: "." becomes "_", counters get "_total", a
# unit in braces adds nothing, and the unit USD is appended as it is.
KINDS = {
    "input": "usagetally_billed_input_tokens_total",
    "output": "usagetally_billed_output_tokens_total",
    "cache_read": "usagetally_billed_cache_read_input_tokens_total",
    "cache_creation": "usagetally_billed_cache_creation_input_tokens_total",
}
ALL_TOKENS = 'sum by (gen_ai_response_model) ({__name__=~"usagetally_billed_.+_tokens_total"})'
COST = "sum by (gen_ai_response_model) (usagetally_cost_USD_total)"
STREAMS_BY_MODEL = "sum by (gen_ai_request_model) (usagetally_streams_total)"
STREAMS_BY_COMPLETE = "sum by (usagetally_complete) (usagetally_streams_total)"
UNPRICED = "sum(usagetally_unpriced_streams_total)"
SCRAPED_AT = "timestamp(usagetally_streams_total)"

U = Decimal(2) ** -53  # the unit roundoff of float64


def _gamma(m: int) -> Decimal:
    return m * U / (1 - m * U)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail(
            "the Prometheus server is not on PATH: run tools/install-prometheus (as root; "
            "make e2e-prometheus does) or install a Prometheus 2.x server",
            pytrace=False,
        )
    return found


class Prometheus:
    """A Prometheus server of the test's own, and its HTTP API."""

    def __init__(self, binary: str, folder: Path, target_port: int) -> None:
        self.folder = folder
        self.log = folder / "prometheus.log"
        config = folder / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL}\n"
            f"  scrape_timeout: {SCRAPE_INTERVAL}\n"
            "scrape_configs:\n"
            "  - job_name: usagetally-e2e\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target_port}']\n"
        )
        self.process: subprocess.Popen[bytes] | None = None
        for _ in range(3):  # the free port may be taken before Prometheus binds it
            self.port = _free_port()
            with self.log.open("wb") as log:
                self.process = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={folder / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--log.level=info",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._ready():
                return
            _stop(self.process)
            if "address already in use" not in self.log.read_text(errors="replace"):
                break
        raise AssertionError(f"Prometheus did not become ready; its log:\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def _ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                url = f"http://127.0.0.1:{self.port}/-/ready"
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return True
            time.sleep(POLL)
        return False

    def query(self, promql: str, at: str | None = None) -> list[dict[str, Any]]:
        """Return the result vector of an instant query, now or at a time (Unix seconds)."""
        arguments = {"query": promql} if at is None else {"query": promql, "time": at}
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(arguments)
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        assert body["data"]["resultType"] == "vector", body
        vector: list[dict[str, Any]] = body["data"]["result"]
        return vector

    def by(self, promql: str, label: str, at: str | None = None) -> dict[str, str]:
        """Return an instant query's values (as Prometheus writes them) by one label."""
        values: dict[str, str] = {}
        for sample in self.query(promql, at):
            key = sample["metric"].get(label, "")
            assert key not in values, f"{promql}: two samples for {label}={key!r}"
            values[key] = sample["value"][1]
        return values

    def scalar(self, promql: str, at: str | None = None) -> str | None:
        vector = self.query(promql, at)
        assert len(vector) <= 1, vector
        return vector[0]["value"][1] if vector else None


class Worker:
    """The worker process (fleet.py) and its JSON-lines protocol."""

    def __init__(self, folder: Path) -> None:
        self.log = folder / "worker.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(HERE / "fleet.py"), f"--count={STREAMS}", f"--seed={SEED}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )
        self.port: int = self._read()["port"]

    def _read(self) -> dict[str, Any]:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        line = stdout.readline()  # the worker answers or exits; the test's timeout bounds it
        if not line:
            self.process.wait(timeout=10)
            raise AssertionError(
                f"the worker exited ({self.process.returncode}); its stderr:\n"
                + self.log.read_text(errors="replace")
            )
        message: dict[str, Any] = json.loads(line)
        return message

    def run(self, start: int, stop: int) -> list[dict[str, Any]]:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(json.dumps({"run": [start, stop]}) + "\n")
        stdin.flush()
        results: list[dict[str, Any]] = self._read()["results"]
        return results

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)  # it exits at end of input
        _stop(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    process = Worker(tmp_path)
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
def prometheus(tmp_path: Path, worker: Worker) -> Iterator[Prometheus]:
    server = Prometheus(_prometheus_binary(), tmp_path, worker.port)
    try:
        yield server
    finally:
        assert server.process is not None
        _stop(server.process)


def _wait_for_scrape_after(prometheus: Prometheus, moment: float, streams: int) -> str:
    """Wait for a scrape begun after ``moment``; return its time, to query the figures at.

    The figures are then all asked at that time, so they come from that one scrape: a later
    scrape (or a failed one, which marks the series stale) changes nothing.
    """
    deadline = time.monotonic() + TIMEOUT
    scraped: set[str] = set()
    while True:
        scraped = {sample["value"][1] for sample in prometheus.query(SCRAPED_AT)}
        # One scrape gives every series the same timestamp. Prometheus may align it to its
        # schedule by up to 2 ms (--scrape.timestamp-tolerance): a 10 ms margin keeps "after".
        if len(scraped) == 1 and float(at := next(iter(scraped))) > moment + 0.01:
            counted = prometheus.scalar("sum(usagetally_streams_total)", at)
            assert counted == str(streams), f"scraped after the round: {counted} streams"
            return at
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no scrape after the round within {TIMEOUT} s (last samples at {scraped}); "
                f"Prometheus log:\n{prometheus.tail()}"
            )
        time.sleep(POLL)


def _wait_for_target(prometheus: Prometheus) -> None:
    """Wait until Prometheus has scraped the worker's exporter once, successfully."""
    deadline = time.monotonic() + TIMEOUT
    while prometheus.scalar('max(up{job="usagetally-e2e"})') != "1":
        if time.monotonic() > deadline:
            raise AssertionError(
                f"Prometheus did not scrape the worker within {TIMEOUT} s; its log:\n"
                + prometheus.tail()
            )
        time.sleep(POLL)


def _cheapest_token(table: Mapping[str, Any]) -> Decimal:
    """The least a token can cost by the table: its lowest rate at the batch multiplier."""
    rates: list[Decimal] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key not in ("inference_geo", "above_prompt_tokens"):  # not rates
                    collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)
        elif isinstance(node, str):
            rates.append(Decimal(node))

    collect(table["models"])
    assert rates
    return min(rates) * Decimal(table["batch_multiplier"]) / 1_000_000


def _exact_sums(
    results: list[dict[str, Any]],
) -> tuple[dict[str, list[int]], dict[str, Decimal], Counter[str]]:
    """Sum the per-stream results: tokens and cost per model, cost amounts per model."""
    tokens: dict[str, list[int]] = {}
    cost: dict[str, Decimal] = {}
    amounts: Counter[str] = Counter()
    with localcontext() as context:
        context.prec = 60  # far more digits than any sum here has: the sums are exact
        for result in results:
            for model, counts in result["billed"].items():
                total = tokens.setdefault(model, [0, 0, 0, 0])
                for i, count in enumerate(counts):
                    total[i] += count
            for model, amount in (result["cost"] or {}).items():
                cost[model] = cost.get(model, Decimal(0)) + Decimal(amount)
                amounts[model] += 1
    return tokens, cost, amounts


def _table(
    tokens: Mapping[str, list[int]],
    cost: Mapping[str, Decimal],
    seen: Mapping[str, str],
    bounds: Mapping[str, Decimal],
) -> list[str]:
    """The figures of the last round, a line per model (printed by the test)."""
    lines = [
        "model | input | output | cache read | cache write | cost | PromQL cost | error | bound"
    ]
    for model in sorted(tokens):
        exact, shown = cost.get(model), seen.get(model)
        error = bound = "-"
        if exact is not None and shown is not None:
            error = f"{abs(Decimal(float(shown)) - exact):.1E}"
            bound = f"{bounds[model]:.1E}"
        figures = " | ".join(str(count) for count in tokens[model])
        lines.append(
            f"{model} | {figures} | {exact or 'unpriced'} | {shown or '-'} | {error} | {bound}"
        )
    return lines


def test_fleet_totals_in_prometheus(
    worker: Worker, prometheus: Prometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    streams = build_streams(STREAMS, SEED)
    by_key: dict[str, Stream] = {stream.key: stream for stream in streams}
    table = json.loads(PRICES.read_text())
    cheapest = _cheapest_token(table)
    results: list[dict[str, Any]] = []
    report = [
        f"{STREAMS} streams in {len(ROUNDS)} rounds; kinds: "
        + ", ".join(f"{k} {n}" for k, n in sorted(Counter(s.kind for s in streams).items()))
    ]

    _wait_for_target(prometheus)  # the counters then start from a scrape of nothing
    for start, stop in ROUNDS:
        began = time.time()
        results += worker.run(start, stop)
        done = time.time()
        at = _wait_for_scrape_after(prometheus, done, len(results))
        report.append(
            f"round {start}-{stop}: worker {done - began:.2f} s; a scrape after it seen "
            f"{time.time() - done:.2f} s later (sampled at +{float(at) - done:.2f} s)"
        )

        # The worker's results are what the streams were built to bill.
        assert len(results) == stop
        for result in results:
            stream = by_key[result["key"]]
            assert result["complete"] is stream.complete, result["key"]
            assert result["billed"] == {m: list(c) for m, c in stream.billed.items()}, (
                result["key"],
                stream.kind,
            )
            assert (result["cost"] is None) is (UNLISTED in stream.billed), result["key"]

        tokens, cost, amounts = _exact_sums(results)

        # Streams, complete or not, and the unpriced ones.
        complete = Counter("true" if r["complete"] else "false" for r in results)
        assert prometheus.by(STREAMS_BY_COMPLETE, "usagetally_complete", at) == {
            key: str(count) for key, count in complete.items()
        }
        per_model = Counter(r["model"] for r in results)
        assert prometheus.by(STREAMS_BY_MODEL, "gen_ai_request_model", at) == {
            model: str(count) for model, count in per_model.items()
        }
        unpriced = sum(1 for r in results if r["cost"] is None)
        assert prometheus.scalar(UNPRICED, at) == (str(unpriced) if unpriced else None)

        # Tokens: exact, per kind and all four kinds together.
        for index, (kind, metric) in enumerate(KINDS.items()):
            promql = f"sum by (gen_ai_response_model) ({metric})"
            assert prometheus.by(promql, "gen_ai_response_model", at) == {
                model: str(counts[index]) for model, counts in tokens.items()
            }, kind
        assert prometheus.by(ALL_TOKENS, "gen_ai_response_model", at) == {
            model: str(sum(counts)) for model, counts in tokens.items()
        }

        # Cost: within the float summation bound of the exact Decimal sum (the docstring).
        seen = prometheus.by(COST, "gen_ai_response_model", at)
        assert set(seen) == set(cost), (sorted(seen), sorted(cost))
        assert UNLISTED not in seen
        bounds: dict[str, Decimal] = {}
        for model, exact in cost.items():
            with localcontext() as context:
                context.prec = 60
                bound = bounds[model] = _gamma(amounts[model] + 1) * exact
                error = abs(Decimal(float(seen[model])) - exact)
            assert bound < cheapest, (model, bound, cheapest)
            assert error <= bound, (model, seen[model], exact, error, bound)

    report.append(
        "streams by request model: "
        + ", ".join(
            f"{m} {n}"
            for m, n in sorted(prometheus.by(STREAMS_BY_MODEL, "gen_ai_request_model", at).items())
        )
        + f"; unpriced {prometheus.scalar(UNPRICED, at)}; by complete: "
        + str(prometheus.by(STREAMS_BY_COMPLETE, "usagetally_complete", at))
    )
    report += _table(tokens, cost, seen, bounds)
    report.append(f"cheapest token by the table: {cheapest} USD; PromQL: {COST}")
    with capsys.disabled():
        print("\n" + "\n".join(report))
