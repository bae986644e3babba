"""The pytest plugin: its fixtures and its explanation of ``assert usage == expected``.

User test files are run in a fresh pytest session through ``pytester``; the plugin is found
by its ``pytest11`` entry point, as it is for users.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from anthropic.types.beta import BetaUsage as SdkBetaUsage

import usagetally._pytest_plugin as plugin
from usagetally import BetaCacheCreation, BetaUsage, converter


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_user=source)
    return pytester.runpytest("-W", "error", "-p", "no:cacheprovider", *args)


def test_the_plugin_is_registered_by_its_entry_point(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.get_plugin("usagetally") is plugin


def test_failing_assert_between_sdk_usages_shows_the_path_diff(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        from anthropic.types.beta import BetaUsage

        def entry(output_tokens):
            return {"type": "message", "input_tokens": 10, "output_tokens": output_tokens,
                    "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}

        def test_usage():
            usage = BetaUsage.model_validate({"input_tokens": 10, "output_tokens": 901,
                "iterations": [entry(450), entry(451)]})
            expected = BetaUsage.model_validate({"input_tokens": 10, "output_tokens": 900,
                "cache_read_input_tokens": 12, "iterations": [entry(450), entry(450)]})
            assert usage == expected
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       assert BetaUsage(...) == BetaUsage(...)",
            "E         Usage differs (left: got, right: expected):",
            "E         output_tokens: expected 900, got 901",
            "E         cache_read_input_tokens: expected 12, got <absent>",
            "E         iterations[1].output_tokens: expected 450, got 451",
        ],
        consecutive=True,
    )


def test_failing_assert_between_our_usages_shows_the_path_diff(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        from usagetally import BetaCacheCreation, BetaUsage

        def test_usage():
            usage = BetaUsage(input_tokens=5, output_tokens=2, cache_creation_input_tokens=30,
                cache_creation=BetaCacheCreation(ephemeral_5m_input_tokens=30,
                                                 ephemeral_1h_input_tokens=0))
            expected = BetaUsage(input_tokens=5, output_tokens=2, cache_creation_input_tokens=30,
                cache_creation=BetaCacheCreation(ephemeral_5m_input_tokens=0,
                                                 ephemeral_1h_input_tokens=30))
            assert usage == expected
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E         Usage differs (left: got, right: expected):",
            "E         cache_creation.ephemeral_5m_input_tokens: expected 0, got 30",
            "E         cache_creation.ephemeral_1h_input_tokens: expected 30, got 0",
        ],
        consecutive=True,
    )


def test_fixtures_work_together(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import anyio
        from usagetally import UsageAccumulator

        def test_builders_and_transcripts(usage_events, sse_transcript):
            events = usage_events.text_stream("Hi", output_tokens=42, cache_read_input_tokens=7)
            acc = UsageAccumulator()
            for chunk in usage_events.random_chunks(sse_transcript(events), seed=1):
                acc.feed(chunk)
            usage_events.assert_usage(
                acc.finish(), {
                    "input_tokens": 25, "output_tokens": 42,
                    "cache_creation_input_tokens": 0, "cache_read_input_tokens": 7,
                    "cache_creation": usage_events.cache_creation(0, 0),
                    "service_tier": "standard"})
            assert sse_transcript(text_chunks="Hi", output_tokens=42,
                                  cache_read_input_tokens=7) == (
                usage_events.sse_bytes(events))
            assert sse_transcript(events, line_ending="\\r\\n").count(b"\\r\\n\\r\\n") == 7

        def test_fake_client(fake_anthropic_client, usage_events):
            async def main():
                async with fake_anthropic_client(
                    usage_events.text_stream("Hello!", output_tokens=5)
                ) as client:
                    async with client.messages.stream(
                        model="claude-sonnet-4-6", max_tokens=64,
                        messages=[{"role": "user", "content": "Hi"}],
                    ) as stream:
                        message = await stream.get_final_message()
                return message.content[0].text, message.usage

            text, usage = anyio.run(main)
            assert text == "Hello!"
            usage_events.assert_usage(usage, {"input_tokens": 25, "output_tokens": 5},
                                      ignore=["cache_creation", "cache_creation_input_tokens",
                                              "cache_read_input_tokens", "service_tier"])
        """,
    )
    result.assert_outcomes(passed=2)


def test_sse_transcript_refuses_events_and_stream_arguments_together(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        import pytest

        def test_both(sse_transcript, usage_events):
            with pytest.raises(TypeError, match="either events or text_stream arguments"):
                sse_transcript([usage_events.ping()], output_tokens=3)
        """,
    )
    result.assert_outcomes(passed=1)


def test_fake_client_skips_without_the_sdk(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import sys
        sys.modules["anthropic"] = None
        """
    )
    result = run(
        pytester,
        """
        def test_needs_sdk(fake_anthropic_client):
            raise AssertionError("not reached")
        """,
        "-rs",
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] *fake_anthropic_client needs the anthropic SDK; "
            "install it with: pip install 'anthropic>=2.12' (usagetally's anthropic extra)"
        ]
    )


def test_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "*fixtures defined from usagetally._pytest_plugin*",
            "fake_anthropic_client -- *",
            "*Give a factory of real ``AsyncAnthropic`` clients*",
        ]
    )


def usage(**fields: Any) -> BetaUsage:
    return converter.structure({"input_tokens": 1, "output_tokens": 2, **fields}, BetaUsage)


def explain(left: object, right: object, op: str = "==") -> list[str] | None:
    return plugin.pytest_assertrepr_compare(None, op, left, right)  # type: ignore[arg-type]


def test_hook_lines_for_our_and_sdk_models() -> None:
    assert explain(usage(speed="fast"), SdkBetaUsage(input_tokens=1, output_tokens=3)) == [
        "BetaUsage(...) == BetaUsage(...)",
        "Usage differs (left: got, right: expected):",
        "output_tokens: expected 3, got 2",
        "speed: expected <absent>, got 'fast'",
    ]
    split = BetaCacheCreation(ephemeral_5m_input_tokens=1, ephemeral_1h_input_tokens=0)
    other = BetaCacheCreation(ephemeral_5m_input_tokens=0, ephemeral_1h_input_tokens=1)
    lines = explain(split, other)
    assert lines is not None
    assert lines[2:] == [
        "ephemeral_5m_input_tokens: expected 0, got 1",
        "ephemeral_1h_input_tokens: expected 1, got 0",
    ]


def test_hook_explains_equal_usages_of_different_types() -> None:
    assert explain(usage(), SdkBetaUsage(input_tokens=1, output_tokens=2)) == [
        "BetaUsage(...) == BetaUsage(...)",
        "The usages have the same wire form but are of different types:",
        "usagetally._models.BetaUsage and anthropic.types.beta.beta_usage.BetaUsage.",
        "Compare them with usagetally.testing.assert_usage(actual, expected).",
    ]


@pytest.mark.parametrize(
    ("op", "left", "right"),
    [
        ("!=", usage(), usage()),
        ("==", usage(), {"input_tokens": 1, "output_tokens": 2}),
        ("==", {"input_tokens": 1}, {"input_tokens": 2}),
        ("==", 1, 2),
        ("==", usage(), converter),
    ],
)
def test_hook_leaves_other_comparisons_to_pytest(op: str, left: object, right: object) -> None:
    assert explain(left, right, op) is None


def test_loading_the_plugin_imports_neither_the_sdk_nor_the_kit() -> None:
    code = (
        "import sys, usagetally._pytest_plugin\n"
        "print(sorted(m for m in ('anthropic', 'httpx2', 'usagetally.testing')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
