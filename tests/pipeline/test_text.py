"""The words every message uses for a duration and a count."""

from __future__ import annotations

import pytest

from pipeline.kernel.text import counted, duration_words


class TestDurationWords:
    @pytest.mark.parametrize(
        ("seconds", "said"),
        [
            (0, "0 seconds"),
            (1, "1 second"),
            (30, "30 seconds"),
            (59.4, "59 seconds"),
            (60, "1 minute"),
            (90, "2 minutes"),
            (47 * 60, "47 minutes"),
            (60 * 60, "60 minutes (1h)"),
            (135 * 60, "135 minutes (2h 15m)"),
        ],
    )
    def test_under_a_minute_is_said_in_seconds_and_one_is_singular(
        self, seconds: float, said: str
    ) -> None:
        assert duration_words(seconds) == said


class TestCounted:
    @pytest.mark.parametrize(
        ("n", "said"), [(0, "0 services"), (1, "1 service"), (2, "2 services")]
    )
    def test_one_is_singular_and_the_rest_plural(self, n: int, said: str) -> None:
        assert counted(n, "service") == said

    def test_an_irregular_plural_is_given(self) -> None:
        assert counted(3, "person", "people") == "3 people"
