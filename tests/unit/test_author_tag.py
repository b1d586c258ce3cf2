"""An update's author as a shared journal keeps it (user id and display name)."""

from __future__ import annotations

import pytest

from cs3collab.service.journal import AUTHOR_MAX, author_tag, parse_author


def test_an_author_tag_reads_back():
    assert parse_author(author_tag("marie@cesnet.demo", "Marie Skłodowska-Curie")) == \
        ("marie@cesnet.demo", "Marie Skłodowska-Curie")
    assert parse_author(author_tag("marie@cesnet.demo", "Marie").encode()) == ("marie@cesnet.demo", "Marie")


@pytest.mark.parametrize("tag", ["", b"", "no separator", "\x1fno user id", b"\xff\xfe"])
def test_what_is_not_a_tag_names_nobody(tag):
    assert parse_author(tag) is None


def test_a_tag_is_bounded():
    assert len(author_tag("u@idp", "x" * 10_000)) == AUTHOR_MAX
