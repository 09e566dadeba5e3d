"""The worker's boundary from outside: what a hostile submission can leave behind, keep, forge or hold.

Everything in the worker is the submission's, so these tests do not ask the worker anything
about itself: they look at the processes of the machine, at the folders, at the clock, and at
what the judge decodes. Each scenario runs in a real grading process started with the
interpreter user nobody can run: as root (each submission then runs as a uid of its own) and as
user nobody (the worker is the grader's own user), with and without Landlock. The static policy
(``grader/judge/policy/``) would refuse these submissions before they run; they go to the sandbox
directly to prove the walls behind it.
"""
import json
import os
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest
from sandbox_python import sandbox_python

from grader.course import REPO_ROOT

HOSTILE = textwrap.dedent('''
    import io, os, socket, struct, time
    import torch

    COUNT = 0


    def escape_and_stay():
        """Leave a busy loop in a session of its own, then answer normally."""
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                while True:
                    pass
            os._exit(0)
        time.sleep(0.2)
        return "escaped"


    def escape_and_die():
        """Leave a sleeping grandchild, then end the worker itself: the grandchild is orphaned."""
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(600)
            os._exit(0)
        time.sleep(0.2)
        os._exit(0)


    def remember():
        """A global and a file: what the next call would see if workers were reused."""
        global COUNT
        COUNT += 1
        seen = os.path.exists("memory.txt")
        with open("memory.txt", "w") as f:
            f.write("I was here")
        return [COUNT, seen]


    def _send(value):
        buffer = io.BytesIO()
        torch.save(value, buffer)
        payload = buffer.getvalue()
        for fd in range(3, 64):
            try:
                sock = socket.socket(fileno=os.dup(fd))
            except OSError:
                continue
            if sock.type == socket.SOCK_STREAM:
                sock.sendall(struct.pack(">I", len(payload)) + payload)
        time.sleep(30)


    def forge_shared_lists():
        """A reply of 2 KB whose lists share themselves 40 levels deep: 2**40 paths."""
        nested = []
        for _ in range(40):
            nested = [nested, nested]
        _send({"ok": True, "value": nested})


    def forge_expanded_tensor():
        """A reply whose tensor claims 2**28 elements over a storage of one."""
        _send({"ok": True, "value": torch.zeros(1).expand(2**28)})


    def burn_cpu():
        while True:
            pass


    def wait_just_under(seconds):
        time.sleep(seconds)
        return "waited"
''')

DRIVER = textwrap.dedent('''
    import json, os, sys, time
    from pathlib import Path
    from grader.sandbox import processes
    from grader.sandbox.client import Sandbox
    from grader.sandbox.identity import choose_identity
    from grader.sandbox.limits import Limits, SubmissionError
    from grader.sandbox.zygote import Zygote

    folder, groups = Path(sys.argv[1]), json.loads(sys.argv[2])
    answers, uids, folders = [], [], []
    with Zygote() as zygote:
        for total_seconds, calls in groups:  # one sandbox (one student) per group
            sandbox = Sandbox(zygote, folder / "hostile.py", choose_identity(),
                              Limits(call_seconds=4, import_seconds=20, total_seconds=total_seconds))
            uids.append(sandbox.uid)
            folders.append(sandbox.folder)
            try:
                for name, args, options in calls:
                    started = time.monotonic()
                    try:
                        answer = {"value": sandbox.request("call", name=name, args=args, **options)}
                    except SubmissionError as err:
                        answer = {"error": str(err)}
                    answer["seconds"] = time.monotonic() - started
                    answers.append(answer)
            finally:
                sandbox.close()
        time.sleep(0.5)  # the zygote sweeps orphans every 0.1 s
        below_zygote = sorted(processes.descendants(zygote.process.pid))
    left = sorted(p for uid in set(uids) if uid not in (None, 0, os.getuid()) for p in processes.processes_of_user(uid))
    print(json.dumps({"answers": answers, "uid": uids[0], "left_of_uid": left, "below_zygote": below_zygote,
                      "folder_left": any(f.exists() for f in folders)}))
''')

CALLS = [[120, [
    ["escape_and_stay", [], {}],
    ["escape_and_die", [], {}],
    ["remember", [], {}],
    ["remember", [], {}],
    ["forge_shared_lists", [], {}],
    ["forge_expanded_tensor", [], {}],
    ["burn_cpu", [], {"timeout": 30, "cpu_seconds": 1}]]],
    # a second student, with a total budget of 9 s, who waits 3 s (under the 4 s deadline) in each call
    [9, [["wait_just_under", [3], {}]] * 4],
]


def run_scenarios(user: str, landlock: bool) -> dict:
    python = sandbox_python()
    folder = Path(tempfile.mkdtemp(prefix="litlabs-boundary-"))  # tmp_path lies under a root-only folder
    try:
        (folder / "hostile.py").write_text(HOSTILE)
        for path in (folder, folder / "hostile.py"):
            path.chmod(0o777 if path.is_dir() else 0o644)
        prefix = ["runuser", "-u", "nobody", "--"] if user == "nobody" else []
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        env.pop("LITLABS_NO_LANDLOCK", None)
        if not landlock:
            env["LITLABS_NO_LANDLOCK"] = "1"
        done = subprocess.run([*prefix, str(python), "-c", DRIVER, str(folder), json.dumps(CALLS)], cwd=folder,
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("user, landlock", [("root", True), ("root", False), ("nobody", True), ("nobody", False)])
def test_a_hostile_worker_leaves_nothing_keeps_nothing_and_cannot_hold_the_judge(user, landlock):
    if os.geteuid() != 0:
        pytest.skip("needs root: the scenarios run as root and as user nobody")
    report = run_scenarios(user, landlock)
    stay, die, first, second, shared, expanded, cpu, *waits = report["answers"]
    # 7. no process outlives its student, however it left its worker's session or tree
    assert stay.get("value") == "escaped", stay
    assert "process ended" in die["error"], die
    assert report["below_zygote"] == [] and report["left_of_uid"] == [], report
    assert not report["folder_left"]
    if user == "root":
        assert report["uid"] >= 61000  # a uid of its own, not nobody's (which a classmate would share)
    # 4. nothing survives from one request to the next: not a global, not a file
    assert first["value"] == [1, False] and second["value"] == [1, False], (first, second)
    # 6. forged replies end in a clean verdict, at once
    for forged in (shared, expanded):
        assert "something other than plain data" in forged["error"] and forged["seconds"] < 10, forged
    # 3. a CPU budget the worker cannot lift, well before the wall-clock deadline
    assert "CPU time" in cpu["error"] and cpu["seconds"] < 15, cpu
    # 6. a total budget: waiting just under every deadline does not hold the judge
    assert waits[0].get("value") == "waited", waits
    assert "total time budget" in waits[-1].get("error", ""), waits
    assert sum(w["seconds"] for w in waits) < 12, waits


def test_a_judge_killed_from_outside_leaves_no_submitted_file_behind(tmp_path):
    """The zygote sees its judge's socket close, kills its workers and removes their folders."""
    import signal
    import sys
    import time

    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "logreg.py").write_text("import time\ntime.sleep(60)\n")  # the judge is killed while it waits
    before = set(Path(tempfile.gettempdir()).glob("litlabs-zygote-*"))
    judge = subprocess.Popen([sys.executable, "-m", "grader.cli", "grade", str(submission), "--results",
                              str(tmp_path / "results.json")], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            homes = set(Path(tempfile.gettempdir()).glob("litlabs-zygote-*")) - before
            if any(home.glob("sandboxes/*/code/logreg.py") for home in homes):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the submission was never copied into a sandbox folder")
    finally:
        judge.send_signal(signal.SIGKILL)
        judge.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(home.glob("sandboxes/*/code/*") for home in homes if home.exists()):
        time.sleep(0.1)
    assert not [str(f) for home in homes if home.exists() for f in home.glob("sandboxes/*/code/*")]


def test_a_process_read_before_its_exiting_parent_is_still_found_below_its_subreaper(monkeypatch):
    """Once pids wrap around a child can have a lower pid than its parent: /proc lists it first, the parent
    exits before it is read, and that one reading shows a child whose parent is nowhere. The walk must not
    take that reading: the child, re-parented to the subreaper (the zygote), is still below it."""
    from grader.sandbox import processes

    subreaper, parent, child = 100, 30000, 300
    readings = iter([
        [(1, 0, 1, "S"), (subreaper, 1, 1, "S"), (child, parent, child, "R")],  # the parent gone before it was read
        [(1, 0, 1, "S"), (subreaper, 1, 1, "S"), (child, subreaper, child, "R")],  # the child re-parented
    ])
    monkeypatch.setattr(processes, "_read_table", lambda: next(readings))
    assert processes.descendants(subreaper) == {child}
