"""The zeroth-order optimiser finds known minima within its evaluation budget."""

from __future__ import annotations

import pytest

from engine.guard.zo import zo_minimize, zo_search


def test_finds_the_minimum_of_a_quadratic() -> None:
    calls = []

    def f(x: float) -> float:
        calls.append(x)
        return (x - 0.3) ** 2

    result = zo_minimize(f, 0.9, 0.0, 1.0, max_evals=20, mu=0.1, lr=0.4)
    assert result.x == pytest.approx(0.3, abs=0.02)
    assert len(calls) == len(result.trace) <= 20
    assert all(0.0 <= t["x"] <= 1.0 for t in result.trace)


def test_minimum_outside_the_range_is_projected_to_the_boundary() -> None:
    result = zo_minimize(lambda x: (x + 2.0) ** 2, 0.5, 0.0, 1.0, max_evals=10, mu=0.1, lr=0.5)
    assert result.x == pytest.approx(0.0)


def test_a_step_function_returns_its_best_evaluated_point() -> None:
    step = lambda x: (1.0 if x < 0.6 else 0.0) + 0.01 * x  # noqa: E731
    result = zo_minimize(step, 0.2, 0.0, 2.0, max_evals=9, mu=0.5, lr=1.0)
    assert result.fx == min(t["f"] for t in result.trace)
    assert result.x >= 0.6


def test_search_is_a_coroutine_with_a_bounded_budget() -> None:
    search = zo_search(0.5, 0.0, 1.0, max_evals=5)
    x, count = next(search), 0
    with pytest.raises(StopIteration) as stop:
        while True:
            count += 1
            x = search.send(abs(x - 0.2))
    assert count == 5 and len(stop.value.value.trace) == 5
