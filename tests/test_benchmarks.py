"""The benchmark scripts still run and print their figures (one short run each; the figures are not judged)."""
import re
import subprocess
import sys

import pytest

from grader.course import REPO_ROOT


def run_benchmark(name, *args):
    done = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / name), *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_train_overhead_prints_the_ratio_and_the_per_step_cost():
    out = run_benchmark("train_overhead.py", "--repeats", "1", "--epochs", "2", "--batch-size", "256")
    assert re.search(r"ratio lightning / plain loop: \d+\.\d\dx", out), out
    assert re.search(r"Lightning's extra time: -?\d+\.\d\d ms per step", out), out


@pytest.mark.slow
def test_grade_reference_prints_time_and_memory_of_a_full_score():
    out = run_benchmark("grade_reference.py", "--repeats", "1")
    assert "score 27" in out, out
    assert re.search(r"wall time\s+median \d+\.\d s", out) and re.search(r"PSS\s+median \d+\.\d\d GB", out), out


@pytest.mark.slow
def test_grade_batch_prints_the_rate_and_the_marginal_time_per_student():
    out = run_benchmark("grade_batch.py", "--students", "3", "--small", "2", "--repeats", "1")
    assert "every row graded right" in out, out
    assert re.search(r"students per minute\s+\d+\.\d", out) and re.search(r"marginal time / student\s+-?\d+\.\d\d s", out)


def test_landlock_setup_prints_its_cost():
    from grader.sandbox.landlock import abi_version

    if not abi_version():
        pytest.skip("this kernel has no Landlock")
    out = run_benchmark("landlock_setup.py", "--repeats", "3")
    assert re.search(r"the wall in total: \d+\.\d\d ms per worker", out), out


@pytest.mark.slow
def test_scaling_prints_throughput_efficiency_and_time_to_first_step():
    out = run_benchmark("scaling.py", "--repeats", "1", "--epochs", "1")
    assert re.search(r"2 process\(es\) on cpu \(1 torch thread\(s\) each\): median \d+ images/s, "
                     r"time to first step \d+\.\d s", out), out
    assert re.search(r"scaling efficiency \d+%", out), out
