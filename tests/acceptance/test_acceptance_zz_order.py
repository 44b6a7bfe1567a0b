"""Runs last (file name): the order of what the bot posted over the whole session."""

from __future__ import annotations

from typing import Any

from tests.acceptance.acceptance_stack import order_problems


def test_acceptance_zz_card_never_runs_ahead_of_the_channel(stack: Any) -> None:
    problems = order_problems(stack)
    assert not problems, "\n".join(problems)
