"""The benchmark harness shared by bench/*/run.py.

Every arm (one implementation or configuration) runs in its own worker
process, started once: it loads its model, then answers timing requests
on a pipe, one JSON line each. The driver warms every arm up on a case
(compiles, first-call costs), then times the arms in turn, A B C A B C
..., `repeats` times, so that a burst of other work on the machine falls
on every arm alike. It reports the median and the spread (min, max,
quartiles) of each arm, ratios of medians, and the machine's core count
and load average before and after.

Worker side (in the worker process):

    serve({"batch_1": run_batch_1, ...})  # each callable returns JSON

Driver side:

    arms = [Arm("a", [sys.executable, __file__, "--serve", "a"]), ...]
    samples = interleave(arms, ["batch_1"], repeats=5)
    summary(samples["a"]["batch_1"])  # {"median": ..., ...}
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

# The worker writes its answers here (a copy of its original stdout);
# anything else the libraries print goes to stderr, not into the answers.
_ANSWERS_FD_ENV = "BENCH_ANSWERS_FD"


def machine_state() -> dict:
    """Core count, 1-minute load average and platform, now."""
    return {
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def summary(samples: Sequence[float]) -> dict:
    """Median and spread of timing samples.

    Args:
        samples: seconds (or any measure), at least one.

    Returns:
        `{"median", "min", "max", "q1", "q3", "n"}`; the quartiles are the
        medians of the lower and upper halves (the middle sample excluded
        when `n` is odd), equal to the median for one sample.

    Raises:
        ValueError: `samples` is empty.
    """
    if not samples:
        raise ValueError("summary() needs at least one sample; got none.")
    ordered = sorted(samples)
    n = len(ordered)
    half = n // 2
    lower, upper = ordered[:half], ordered[n - half :]
    median = statistics.median(ordered)
    return {
        "median": median,
        "min": ordered[0],
        "max": ordered[-1],
        "q1": statistics.median(lower) if lower else median,
        "q3": statistics.median(upper) if upper else median,
        "n": n,
    }


def rate_summary(seconds: Sequence[float], work: float) -> dict:
    """`summary` of `work / seconds` (e.g. tokens per second)."""
    return summary([work / s for s in seconds])


def ratio(numerator: dict, denominator: dict) -> float:
    """Ratio of two summaries' medians."""
    return numerator["median"] / denominator["median"]


def interleaved_order(
    arms: Sequence[str], repeats: int
) -> list[tuple[int, str]]:
    """The timing order: `(repeat, arm)` for A B C, A B C, ...

    Args:
        arms: arm names, in the order of each round.
        repeats: rounds.

    Returns:
        `repeats * len(arms)` pairs, round by round.
    """
    return [(r, arm) for r in range(repeats) for arm in arms]


class Arm:
    """One worker process, started once and asked for timed runs.

    Args:
        name: the arm's name in results.
        command: the worker's command line (it calls `serve`).
        env: extra environment variables of the worker.
        cwd: the worker's working directory.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        env: dict | None = None,
        cwd: str | None = None,
    ):
        self.name = name
        self.log = tempfile.NamedTemporaryFile(
            "w+", prefix=f"bench_{name}_", suffix=".log", delete=False
        )
        read_fd, write_fd = os.pipe()
        full_env = dict(os.environ, **(env or {}))
        full_env[_ANSWERS_FD_ENV] = str(write_fd)
        self.process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=self.log,
            stderr=self.log,
            env=full_env,
            cwd=cwd,
            pass_fds=(write_fd,),
            text=True,
        )
        os.close(write_fd)
        self._answers = os.fdopen(read_fd, "r")
        self.info = self._read()  # the worker's "ready" answer

    def call(self, case: str) -> dict:
        """Runs `case` once in the worker; its timing and output.

        Returns:
            `{"wall_s", "cpu_s", "output"}`: wall-clock and process CPU
            seconds of the call, and what the case returned.

        Raises:
            RuntimeError: the worker failed (its log's tail is included).
        """
        self.process.stdin.write(json.dumps({"case": case}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict:
        line = self._answers.readline()
        if not line:
            raise RuntimeError(
                f"bench worker {self.name!r} ended (exit "
                f"{self.process.poll()}); log {self.log.name}:\n"
                + self._log_tail()
            )
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(
                f"bench worker {self.name!r} failed: {answer['error']}"
            )
        return answer

    def _log_tail(self) -> str:
        with open(self.log.name) as f:
            return f.read()[-4000:]

    def view(self, name: str) -> SharedArm:
        """The arm `name` hosted by this worker (cases `name/...`)."""
        return SharedArm(name, self)

    def close(self) -> None:
        """Ends the worker (closing its input ends its loop)."""
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._answers.close()
        self.log.close()
        if self.process.returncode == 0:
            os.remove(self.log.name)  # kept when the worker failed


class SharedArm:
    """One of several arms hosted by one worker process.

    Its cases are the worker's cases named `arm/case`, so that arms of one
    library share one process (one copy of the runtime in memory).

    Args:
        name: the arm's name (the prefix of its cases).
        worker: the started `Arm` that hosts it.
    """

    def __init__(self, name: str, worker: Arm):
        self.name = name
        self.worker = worker
        prefix = f"{name}/"
        self.info = {
            "cases": [
                case[len(prefix) :]
                for case in worker.info["cases"]
                if case.startswith(prefix)
            ],
            "info": worker.info["info"],
        }

    def call(self, case: str) -> dict:
        """As `Arm.call`, for this arm's `case`."""
        return self.worker.call(f"{self.name}/{case}")


def serve(
    cases: dict[str, Callable[[], object]],
    info=None,
    output: Callable[[object], object] | None = None,
) -> None:
    """The worker's loop: runs the requested cases, answers their timing.

    Args:
        cases: case name -> a callable whose return value is the case's
            output, e.g. the tokens, for the driver to check.
        info: JSON-ready facts about the worker, sent once at start.
        output: turns a case's return value into what the driver gets
            (JSON-ready, e.g. a digest), after the clock stops; the value
            itself by default.
    """
    answers = os.fdopen(int(os.environ[_ANSWERS_FD_ENV]), "w")
    # Libraries that print to stdout must not garble the answers.
    sys.stdout = sys.stderr

    def answer(payload: dict) -> None:
        answers.write(json.dumps(payload) + "\n")
        answers.flush()

    answer({"ready": True, "cases": sorted(cases), "info": info or {}})
    for line in sys.stdin:
        case = json.loads(line)["case"]
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            result = cases[case]()
            wall = time.perf_counter() - wall
            cpu = time.process_time() - cpu
            answer(
                {
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "output": output(result) if output else result,
                }
            )
        except Exception as error:  # noqa: BLE001 - reported to the driver
            answer({"error": f"{case}: {type(error).__name__}: {error}"})


def interleave(
    arms: Sequence[Arm | SharedArm],
    cases: Sequence[str],
    repeats: int,
    warmups: int = 1,
    log: Callable[[str], None] | None = None,
    errors: dict | None = None,
) -> dict:
    """Times every arm on every case, interleaved.

    For each case: `warmups` untimed calls per arm, then `repeats` rounds
    of one call per arm, in the arms' order.

    Args:
        arms: started arms; an arm that lacks a case is skipped for it.
        cases: case names.
        repeats: timed calls per arm and case (at least 5 for results).
        warmups: untimed calls per arm and case first.
        log: called with a progress line.
        errors: when given, an arm that fails on a case is left out of the
            case and its error stored as `errors[arm][case]`; otherwise
            the failure is raised.

    Returns:
        `{arm: {case: {"wall_s": [...], "cpu_s": [...], "output": first
        timed output}}}`, without the cases an arm failed.

    Raises:
        RuntimeError: an arm failed and `errors` is None.
    """
    results = {arm.name: {} for arm in arms}
    for case in cases:
        present = [arm for arm in arms if case in arm.info["cases"]]
        failed = set()

        def call(arm, case=case, failed=failed):
            try:
                return arm.call(case)
            except RuntimeError as error:
                if errors is None:
                    raise
                errors.setdefault(arm.name, {})[case] = str(error)[-2000:]
                failed.add(arm.name)
                results[arm.name].pop(case, None)
                return None

        for arm in present:
            results[arm.name][case] = {"wall_s": [], "cpu_s": []}
            for _ in range(warmups):
                if call(arm) is None:
                    break
        by_name = {arm.name: arm for arm in present}
        for _, name in interleaved_order(list(by_name), repeats):
            if name in failed:
                continue
            answer = call(by_name[name])
            if answer is None:
                continue
            record = results[name][case]
            record["wall_s"].append(answer["wall_s"])
            record["cpu_s"].append(answer["cpu_s"])
            record.setdefault("output", answer["output"])
        if log:
            medians = {
                name: summary(results[name][case]["wall_s"])["median"]
                for name in by_name
                if name not in failed
            }
            log(
                f"{case}: "
                + ", ".join(f"{n} {s:.3f} s" for n, s in medians.items())
            )
    return results


def spread_text(stats: dict, fmt: str = "{:.1f}") -> str:
    """`median (min-max)` of a summary, for a table cell."""
    return (
        f"{fmt.format(stats['median'])} "
        f"({fmt.format(stats['min'])}-{fmt.format(stats['max'])})"
    )


def method_lines(repeats: int, warmups: int, before: dict, after: dict):
    """The results.md paragraph on how the numbers were taken."""
    return [
        f"Method: each arm in its own process, started once; per case "
        f"{warmups} untimed warm-up call per arm, then {repeats} timed "
        "calls per arm interleaved (A B C, A B C, ...). Cells give the "
        "median and, in brackets, the min-max of the repeats; ratios are "
        "ratios of medians. Threads: each library's default on this "
        f"machine ({before['cpus']} cores) unless a row says otherwise.",
        f"Machine: {before['platform']}, {before['cpus']} cores, load "
        f"average (1 min) {before['load_average_1m']} at the start "
        f"({before['time']}) and {after['load_average_1m']} at the end "
        f"({after['time']}); the end figure counts the benchmark's own "
        "processes"
        + (
            "; other work shared the machine."
            if before["load_average_1m"] >= 1.0
            else "."
        ),
    ]


def write_results(out_dir: str, results: dict, markdown: str) -> None:
    """Writes results.json and results.md into `out_dir`."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(markdown.rstrip("\n") + "\n")
