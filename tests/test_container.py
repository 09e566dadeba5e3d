"""Grading in a small container (Gradescope's default: 768 MB, half a CPU).

The judge loads its data without Lightning (``datamodules.splits``), forks the zygote right after
importing torch so that torch's pages are shared (``grader.sandbox.zygote.Zygote``), and run_autograder's
supervisor (``grader/instructor/gradescope/supervise.py``) says in results.json why a killed grading has no
results and leaves no process behind. The slow test grades every lab's reference under Docker-like
cgroup limits (benchmarks/grade_reference.py's ``DockerLimits``) and expects full marks.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SUPERVISE = REPO / "grader" / "instructor" / "gradescope" / "supervise.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("grade_reference", REPO / "benchmarks" / "grade_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _python(code: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LITLABS_ZYGOTE_EXEC"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env, **kwargs)


# --- the judge's data, without Lightning ------------------------------------------------------

@pytest.mark.parametrize("name, options", [("mnist", {}), ("mnist", {"classes": (5, 6, 7, 8, 9)}),
                                           ("digits", {"classes": (0, 1)}),
                                           ("mnist", {"labels_per_class": 10, "random_labels": True, "seed": 3})])
def test_judge_data_is_the_datamodules_data(name, options):
    from datamodules import build_datamodule
    from datamodules.splits import PreparedData

    judge = PreparedData(name, **options)
    datamodule = build_datamodule(name, **options)
    datamodule.setup()
    assert judge.output_classes == datamodule.output_classes
    for split in ("train", "val", "test"):
        for a, b in zip(judge.split(split), datamodule.split(split)):
            assert torch.equal(a, b)


def test_judge_loads_data_and_starts_its_zygote_without_lightning():
    done = _python("""
        import sys
        from grader.sandbox.zygote import Zygote
        with Zygote() as zygote:
            zygote.wait_ready()
            from grader.kit.convergence import offline_data, training_splits
            offline_data("mnist").split("test"), offline_data("mnist", (0, 1)).split("train"), training_splits("mnist")
            print(zygote.forked, zygote.why_not_forked or "-", "lightning" in sys.modules)
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "-", "False"]


# --- the forked zygote keeps every property of the fresh one ----------------------------------

def test_forked_zygote_is_as_clean_as_a_fresh_interpreter(tmp_path):
    submission = tmp_path / "probe.py"
    submission.write_text("def info():\n    import os, sys\n"
                          "    return {'path': list(sys.path), 'env': dict(os.environ), 'lightning': 'lightning' in sys.modules}\n")
    done = _python(f"""
        import json, os, sys
        from pathlib import Path
        from grader.sandbox.client import Sandbox
        from grader.sandbox.identity import choose_identity
        from grader.sandbox.limits import worker_env
        from grader.sandbox.zygote import Zygote
        zygote = Zygote()
        zygote.wait_ready()
        pid = zygote.process.pid
        fds = {{fd: os.readlink(f"/proc/{{pid}}/fd/{{fd}}") for fd in os.listdir(f"/proc/{{pid}}/fd")}}
        environ = [e for e in open(f"/proc/{{pid}}/environ").read().split("\\0") if e]
        sandbox = Sandbox(zygote, Path({str(submission)!r}), choose_identity(), landlock=False)
        info = sandbox.request("call", name="info")
        sandbox.close()
        home = zygote.home
        zygote.close()
        print(json.dumps({{"forked": zygote.forked, "fds": fds, "environ": environ,
                          "home": home, "home_left": os.path.exists(home), "zygote_left": os.path.exists(f"/proc/{{pid}}"),
                          "info": info, "judge_lightning": "lightning" in sys.modules}}))
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.splitlines()[-1])
    assert got["forked"]
    fds = got["fds"]
    assert sorted(fds, key=int)[:3] == ["0", "1", "2"] and len(fds) == 4, fds  # stdin, stdout, stderr, control
    assert fds["0"] == fds["1"] == "/dev/null" and fds["2"] == f"{got['home']}/stderr.log"
    assert got["environ"] == [], "the judge's environment strings are left in the zygote's memory"
    assert not got["home_left"] and not got["zygote_left"]
    assert not got["judge_lightning"] and got["info"]["lightning"]
    path = got["info"]["path"]
    assert path[0] == str(REPO) and "" not in path and "." not in path and str(REPO / "tests") not in path
    assert "PYTHONPATH" not in got["info"]["env"]


def test_zygote_sees_its_cwd_and_the_judges_death(tmp_path):
    judge = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import os, sys, time
        from grader.sandbox.zygote import Zygote
        zygote = Zygote()
        zygote.wait_ready()
        os.makedirs(os.path.join(zygote.home, "sandboxes", "submission-x"))
        print(zygote.process.pid, zygote.home, os.readlink(f"/proc/{zygote.process.pid}/cwd"), zygote.forked, flush=True)
        time.sleep(600)
    """)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        pid, home, cwd, forked = judge.stdout.readline().split()
        assert cwd == home and forked == "True"
    finally:
        judge.kill()
        judge.wait()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}"), "the zygote outlived its judge"
    assert not os.path.exists(os.path.join(home, "sandboxes")), "the zygote left its sandboxes behind"


def test_no_fork_from_a_process_that_loaded_labelled_data_or_ran_torch():
    done = _python("""
        from grader.sandbox.zygote import Zygote
        from datamodules.splits import note_labelled_data
        note_labelled_data()  # as reading a data set does
        with Zygote() as zygote:
            zygote.wait_ready()
            print(zygote.forked, zygote.why_not_forked)
        from grader.kit.convergence import offline_data
        offline_data("digits")  # loads labels and runs torch operations (its thread pool starts)
        with Zygote() as zygote:
            zygote.wait_ready()
            print(zygote.forked)
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    first, second = done.stdout.splitlines()
    assert first == "False this process has loaded labelled data" and second == "False"


# --- run_autograder's supervisor ----------------------------------------------------------------

def _supervise(tmp_path, command: list[str], preexec=None) -> dict:
    results = tmp_path / "results.json"
    subprocess.run([sys.executable, str(SUPERVISE), str(results), "--", *command], timeout=120, preexec_fn=preexec)
    return json.loads(results.read_text())


def test_supervisor_explains_a_killed_grader_and_kills_what_it_left(tmp_path):
    marker = tmp_path / "orphan.pid"
    # The "grader" leaves a process in a session of its own, then is killed like the OOM killer would.
    code = (f"import os, subprocess, signal; p = subprocess.Popen(['sleep', '300'], start_new_session=True); "
            f"open({str(marker)!r}, 'w').write(str(p.pid)); os.kill(os.getpid(), signal.SIGKILL)")
    document = _supervise(tmp_path, [sys.executable, "-c", code])
    assert document["score"] == 0 and "killed (SIGKILL)" in document["output"]
    assert "could not start" not in document["output"]
    orphan = int(marker.read_text())
    assert not os.path.exists(f"/proc/{orphan}") or open(f"/proc/{orphan}/stat").read().split()[2] == "Z"


def test_supervisor_keeps_the_graders_results(tmp_path):
    results = tmp_path / "results.json"
    code = f"import json; json.dump({{'score': 3, 'tests': []}}, open({str(results)!r}, 'w'))"
    assert _supervise(tmp_path, [sys.executable, "-c", code])["score"] == 3


def test_supervisor_says_out_of_memory(tmp_path):
    bench = _benchmark()
    try:
        limits = bench.DockerLimits(200 * 1024**2, None).__enter__()
    except bench.CgroupUnavailable as err:
        print(f"skipped: {err}")
        pytest.skip(f"no cgroup for a memory limit: {err}")
    try:
        document = _supervise(tmp_path, [sys.executable, "-c", "x = bytearray(600 * 1024**2); x[::4096] = b'1' * len(x[::4096])"],
                              preexec=limits.preexec)
    finally:
        limits.__exit__(None, None, None)
    assert document["output"].startswith("Out of memory: the grader was killed at the container's memory limit (200 MB)")
    assert "set the autograder's memory to at least" in document["output"]


# --- every lab's reference in a small container -----------------------------------------------

@pytest.mark.slow
def test_every_reference_gets_full_marks_in_one_gb_and_half_a_cpu(tmp_path):
    from grader.course import LABS

    bench = _benchmark()
    figures = []
    for lab in LABS:
        try:
            with bench.DockerLimits(1024**3, 0.5) as limits:
                run = bench.grade_once(tmp_path / f"{lab}.json", lab, limits)
        except bench.CgroupUnavailable as err:
            print(f"skipped: {err}")
            pytest.skip(f"cannot create cgroups like Docker's: {err}")
        document = json.loads((tmp_path / f"{lab}.json").read_text()) if run["score"] is not None else {}
        figures.append(f"{lab}: {run['peak'] / 1024**2:.0f} MiB, {run['wall']:.0f} s, score {run['score']}")
        assert run["oom_kills"] == 0, f"{lab} reached the 1 GB limit ({figures[-1]})"
        assert run["score"] is not None, f"{lab}: no results (exit {run['exit']})"
        full = sum(test["max_score"] for test in document["tests"])
        assert run["score"] == full, f"{lab}: {document['output']}\n" + "\n".join(
            f"{t['name']}: {t['output']}" for t in document["tests"] if t["status"] != "passed")
    print("\n".join(figures))
