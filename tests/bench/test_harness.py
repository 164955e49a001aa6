"""The benchmark harness's statistics, order and worker protocol."""

import importlib.util
import os
import sys
import textwrap

import pytest

_PATH = os.path.join(
    os.path.dirname(__file__), "..", "..", "bench", "harness.py"
)
_SPEC = importlib.util.spec_from_file_location("bench_harness", _PATH)
harness = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(harness)


def test_summary_odd_and_even():
    odd = harness.summary([5.0, 1.0, 3.0, 9.0, 7.0])
    assert odd == {
        "median": 5.0,
        "min": 1.0,
        "max": 9.0,
        "q1": 2.0,
        "q3": 8.0,
        "n": 5,
    }
    even = harness.summary([4.0, 1.0, 3.0, 2.0])
    assert (even["median"], even["q1"], even["q3"]) == (2.5, 1.5, 3.5)
    assert harness.summary([2.0])["q1"] == 2.0


def test_summary_rejects_empty():
    with pytest.raises(ValueError, match="at least one sample"):
        harness.summary([])


def test_rates_and_ratio_of_medians():
    fast = harness.rate_summary([1.0, 2.0, 4.0], work=8.0)
    slow = harness.rate_summary([4.0, 8.0, 2.0], work=8.0)
    assert (fast["median"], fast["min"], fast["max"]) == (4.0, 2.0, 8.0)
    assert harness.ratio(fast, slow) == pytest.approx(2.0)


def test_interleaved_order():
    assert harness.interleaved_order(["a", "b"], 3) == [
        (0, "a"),
        (0, "b"),
        (1, "a"),
        (1, "b"),
        (2, "a"),
        (2, "b"),
    ]


def test_workers_are_timed_in_turn(tmp_path):
    # Each worker appends its name to a shared file on every call, so the
    # file records the order of the calls across processes.
    calls = tmp_path / "calls.txt"
    script = tmp_path / "worker.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import importlib.util, sys
            spec = importlib.util.spec_from_file_location("h", {_PATH!r})
            h = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(h)
            name = sys.argv[1]
            print("library noise on stdout")

            def run():
                with open({str(calls)!r}, "a") as f:
                    f.write(name + "\\n")
                return [name]

            h.serve({{"case": run}}, info={{"name": name}})
            """
        )
    )
    arms = [
        harness.Arm(name, [sys.executable, str(script), name])
        for name in ("a", "b")
    ]
    try:
        results = harness.interleave(arms, ["case"], repeats=3)
    finally:
        for arm in arms:
            arm.close()
    order = calls.read_text().split()
    # One warm-up each, then a b a b a b.
    assert order == ["a", "b"] + ["a", "b"] * 3
    assert results["a"]["case"]["output"] == ["a"]
    assert len(results["b"]["case"]["wall_s"]) == 3
    assert arms[0].info["info"] == {"name": "a"}


def test_shared_arms_strip_their_prefix(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import importlib.util
            spec = importlib.util.spec_from_file_location("h", {_PATH!r})
            h = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(h)
            h.serve({{"x/1": lambda: "x1", "y/1": lambda: "y1",
                      "y/2": lambda: "y2"}})
            """
        )
    )
    worker = harness.Arm("w", [sys.executable, str(script)])
    try:
        x, y = worker.view("x"), worker.view("y")
        assert x.info["cases"] == ["1"]
        assert sorted(y.info["cases"]) == ["1", "2"]
        results = harness.interleave([x, y], ["1", "2"], repeats=2)
    finally:
        worker.close()
    assert results["x"]["1"]["output"] == "x1"
    assert "2" not in results["x"]
    assert results["y"]["2"]["output"] == "y2"


def test_a_failing_arm_is_left_out_and_reported(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import importlib.util
            spec = importlib.util.spec_from_file_location("h", {_PATH!r})
            h = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(h)

            def broken():
                raise ValueError("no such model")

            h.serve({{"ok/c": lambda: 1, "bad/c": broken}})
            """
        )
    )
    worker = harness.Arm("w", [sys.executable, str(script)])
    try:
        arms = [worker.view("ok"), worker.view("bad")]
        with pytest.raises(RuntimeError, match="no such model"):
            harness.interleave(arms, ["c"], repeats=2)
        errors = {}
        results = harness.interleave(arms, ["c"], repeats=2, errors=errors)
    finally:
        worker.close()
    assert len(results["ok"]["c"]["wall_s"]) == 2
    assert results["bad"] == {}
    assert "ValueError: no such model" in errors["bad"]["c"]
