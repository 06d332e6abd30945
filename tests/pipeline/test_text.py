"""The words every message uses for a duration and a count."""

from __future__ import annotations

import pytest

from pipeline.kernel.text import Line, People, Person, counted, duration_words, line


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
            (60 * 60, "60 minutes"),
            (61 * 60, "61 minutes (1h 1m)"),
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


def test_a_line_kept_as_json_still_names_its_people() -> None:
    said = line(
        "{who} stopped it with {n} others ({them}): {why}",
        who=Person("U1"),
        n=2,
        them=People(("U2", "S3")),
        why="<!channel> {oops}",
    )

    again = Line.loads(said.dumps())

    assert again == said
    assert again.render(text=str.upper, person=lambda i: f"@{i}") == (
        "@U1 stopped it with 2 others (@U2, @S3): <!CHANNEL> {OOPS}"
    )
