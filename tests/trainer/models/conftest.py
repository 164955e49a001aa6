"""Fixtures shared by the model tests."""

import pytest


@pytest.fixture(scope="module")
def runs_slow_tests(request) -> bool:
    """Whether this session runs a slow test of the requesting module.

    A module's reference process then computes its slow (real-size) cases
    only when one of them is selected, e.g. not under `-m "not slow"`.
    """
    module = request.module.__file__
    return any(
        item.get_closest_marker("slow") and str(item.path) == module
        for item in request.session.items
    )
