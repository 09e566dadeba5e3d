"""The Landlock wall around the worker: what submitted code can read, write, reach and signal.

Each probe runs inside a real worker; each has a control run without Landlock that
succeeds, so a probe that is refused proves the wall and not a broken probe.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from sandbox_python import sandbox_python

from grader.course import REPO_ROOT
from grader.judge.grade import grade
from grader.sandbox.client import Sandbox
from grader.sandbox.identity import choose_identity, landlock_abi
from grader.sandbox.limits import Limits


@pytest.fixture(autouse=True)
def walls_behind_the_policy(monkeypatch):
    """Several submissions here break the static policy (grader/judge/policy/) on purpose, to reach the walls behind
    it: the policy is off in this module, so those walls are what is tested (tests/test_hostile.py tests the
    policy's own verdicts)."""
    monkeypatch.setenv("LITLABS_NO_POLICY", "1")


PROBE = '''
import os, signal, socket


def probe(action, target):
    """Try one thing; say "ok" or the exception's type."""
    try:
        if action == "read":
            with open(target) as f:
                f.read(16)
        elif action == "list":
            os.listdir(target)
        elif action == "write":
            with open(target, "w") as f:
                f.write("written by the submission")
        elif action == "connect":
            socket.create_connection(("127.0.0.1", target), timeout=3).close()
        elif action == "bind":
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                s.listen()
        elif action == "signal":
            os.kill(target, signal.SIGCONT)  # harmless if it lands: a running process just continues
        return "ok"
    except Exception as err:
        return type(err).__name__
'''

needs_landlock = pytest.mark.skipif(
    not landlock_abi() and not os.environ.get("LITLABS_REQUIRE_SANDBOX"),
    reason="this kernel has no Landlock (CI requires it: LITLABS_REQUIRE_SANDBOX)")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """What a hostile submission looks for: a world-readable copy of the instructor repository, a secret
    in a home directory, a results file, and a TCP server on the loopback."""
    root = Path(tempfile.mkdtemp(prefix="litlabs-planted-"))
    shutil.copytree(REPO_ROOT / "solutions", root / "checkout" / "solutions")
    (root / "home" / ".ssh").mkdir(parents=True)
    (root / "home" / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (root / "results.json").write_text("{}")
    for path in [root, *root.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield {"root": root, "port": server.getsockname()[1]}
    stop.set()
    thread.join()
    server.close()
    shutil.rmtree(root)


def probes(zygote, tmp_path, landlock, asks):
    (tmp_path / "probe.py").write_text(PROBE)
    sandbox = Sandbox(zygote, tmp_path / "probe.py", choose_identity(), Limits(call_seconds=10), landlock=landlock)
    try:
        answers = {name: sandbox.request("call", name="probe", args=list(ask)) for name, ask in asks.items()}
        return answers, sandbox.confinement
    finally:
        sandbox.close()


def attacks(planted):
    root = planted["root"]
    return {
        "the graded checkout's reference": ("read", str(REPO_ROOT / "solutions" / "logreg.py")),
        "the hidden checks": ("read", str(REPO_ROOT / "grader" / "hidden" / "test_logreg.py")),
        "a second checkout": ("read", str(root / "checkout" / "solutions" / "logreg.py")),
        "a key in a home directory": ("read", str(root / "home" / ".ssh" / "id_ed25519")),
        "a results file": ("read", str(root / "results.json")),
        "the judge's environment": ("read", f"/proc/{os.getpid()}/environ"),
        "listing /tmp": ("list", "/tmp"),
        "writing outside the scratch folder": ("write", str(root / "written.txt")),
        "a TCP connection": ("connect", planted["port"]),
        "listening on a TCP port": ("bind", 0),
        "a signal to the judge": ("signal", os.getpid()),
    }


@needs_landlock
def test_every_attack_is_refused_inside_the_wall_and_works_without_it(zygote, tmp_path, planted):
    asks = attacks(planted)
    refused, confinement = probes(zygote, tmp_path, True, asks)
    assert confinement.startswith(f"landlock v{landlock_abi()} (files")
    allowed, _ = probes(zygote, tmp_path, False, asks)
    as_root = os.geteuid() == 0 and not choose_identity().isolated  # the worker then is root: nothing stops it
    # A worker of another uid is kept from the judge's process by the kernel, Landlock or not.
    other_user = {"the judge's environment", "a signal to the judge"} if choose_identity().isolated else set()
    for name in asks:
        assert refused[name] == "PermissionError", (name, refused[name])
        if as_root or name not in ("the graded checkout's reference", "the hidden checks", *other_user):
            assert allowed[name] == "ok", (name, allowed[name])
    assert not (planted["root"] / "written.txt").exists() or allowed["writing outside the scratch folder"] == "ok"


@needs_landlock
def test_what_the_submission_legitimately_needs_still_works(zygote, tmp_path):
    answers, _ = probes(zygote, tmp_path, True, {
        "its scratch folder": ("write", "scratch.txt"),
        "its own file": ("read", "../code/probe.py"),
        "/dev/null": ("write", "/dev/null"),
        "a module of the standard library": ("read", os.__file__),
    })
    assert set(answers.values()) == {"ok"}, answers


@needs_landlock
def test_signals_to_the_zygote_are_refused(zygote, tmp_path):
    answers, _ = probes(zygote, tmp_path, True, {"zygote": ("signal", zygote.process.pid)})
    assert answers == {"zygote": "PermissionError"}


WALKER = '''
import os


def _find_reference():
    """Walk the usual places for another copy of the instructor repository."""
    for top in ("/tmp", "/work", "/root", "/home", "/opt", "/srv"):
        for folder, subfolders, files in os.walk(top):
            if folder.count(os.sep) - top.count(os.sep) > 4:
                subfolders[:] = []
            if folder.endswith(os.sep + "solutions") and "logreg.py" in files:
                try:
                    return open(os.path.join(folder, "logreg.py")).read()
                except OSError:
                    pass
    return None


_source = _find_reference()
if _source is not None:
    exec(_source)
'''


@needs_landlock
def test_a_submission_that_execs_a_planted_copy_of_the_reference_scores_what_a_stub_scores(zygote, tmp_path, planted):
    (tmp_path / "logreg.py").write_text(WALKER)
    walled = grade(tmp_path, "logreg", zygote=zygote, identity=choose_identity())
    stub = grade(REPO_ROOT / "labs", "logreg", zygote=zygote, identity=choose_identity())
    assert walled.score == stub.score == 0 and not walled.error
    assert any(note.startswith("Confinement: landlock v") for note in walled.notes)


def test_without_landlock_grading_completes_and_the_report_names_the_missing_wall(zygote, tmp_path, monkeypatch):
    monkeypatch.setenv("LITLABS_NO_LANDLOCK", "1")
    results = grade(REPO_ROOT / "solutions", "logreg", zygote=zygote, identity=choose_identity())
    assert results.score == 27 and not results.error
    layers = next(note for note in results.notes if note.startswith("Confinement:"))
    assert "no file wall (Landlock unavailable" in layers and "rlimits" in layers


def test_require_confinement_refuses_without_landlock(tmp_path, monkeypatch, capsys):
    from grader.cli import main

    monkeypatch.setenv("LITLABS_NO_LANDLOCK", "1")
    assert main(["grade", "solutions", "--lab", "logreg", "--require-confinement",
                 "--results", str(tmp_path / "r.json")]) == 2
    assert "refusing to run the submission without the Landlock file wall" in capsys.readouterr().err
    assert json.loads((tmp_path / "r.json").read_text())["score"] == 0


@pytest.mark.slow
@needs_landlock
def test_as_a_normal_user_without_root_the_planted_reference_stays_out_of_reach(planted):
    python = sandbox_python()  # root, to become a normal user too
    folder = Path(tempfile.mkdtemp(prefix="litlabs-walker-"))
    try:
        (folder / "sub").mkdir()
        (folder / "sub" / "logreg.py").write_text(WALKER)
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        for prefix in ([], ["runuser", "-u", "nobody", "--"]):  # root (worker: nobody), then a normal user
            done = subprocess.run([*prefix, str(python), "-m", "grader.cli", "grade", "sub", "--results",
                                   "r.json", "--format", "json"], cwd=folder, env=env, capture_output=True,
                                  text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            document = json.loads((folder / "r.json").read_text())
            assert document["score"] == 0 and "Confinement: landlock v" in document["output"], prefix
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- the instructor's checkout is never left changed ---------------------------------------

def _checkout_copy():
    """A copy of the instructor repository that user nobody can read, graded with an interpreter nobody can run."""
    python = sandbox_python()  # root: the file-mode fallback hides files from user nobody
    root = Path(tempfile.mkdtemp(prefix="litlabs-checkout-"))
    for name in ("solutions", "grader", "datamodules", "labs"):
        shutil.copytree(REPO_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "sub").mkdir()
    shutil.copy(REPO_ROOT / "solutions" / "logreg.py", root / "sub" / "logreg.py")
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    root.chmod(0o777)  # results files of every user go here
    return python, root


def _modes(root):
    return {name: (root / name).stat().st_mode & 0o777 for name in ("solutions", "grader/hidden", "grader")}


def _start_grading(python, root, *, landlock=True, user=None):
    env = {**os.environ, "PYTHONPATH": str(root), "LITLABS_HIDDEN_STATE_DIR": str(root.parent / f"{root.name}-state")}
    if not landlock:
        env["LITLABS_NO_LANDLOCK"] = "1"
    prefix = ["runuser", "-u", user, "--"] if user else []
    return subprocess.Popen([*prefix, str(python), "-m", "grader.cli", "grade", "sub", "--lab", "logreg",
                             "--results", f"results-{len(os.listdir(root))}.json", "--format", "json"], cwd=root,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, seconds=30.0):
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_file_mode_fallback_restores_the_checkout_after_overlapping_and_killed_gradings():
    python, root = _checkout_copy()
    try:
        before = _modes(root)
        first = _start_grading(python, root, landlock=False)
        assert _wait_for(lambda: _modes(root)["solutions"] == 0o700), "the fallback did not hide solutions/"
        second = _start_grading(python, root, landlock=False)  # starts while the first one holds them hidden
        assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0, second.stderr.read()[-2000:]
        assert _modes(root) == before

        killed = _start_grading(python, root, landlock=False)
        assert _wait_for(lambda: _modes(root)["grader/hidden"] == 0o700)
        killed.kill()  # SIGKILL: no finally, no atexit
        killed.wait()
        assert _wait_for(lambda: _modes(root) == before, 90), _modes(root)  # the zygote must end first; a loaded machine

        # and a normal user can grade from that checkout afterwards
        as_nobody = _start_grading(python, root, user="nobody")
        assert as_nobody.wait(timeout=300) == 0, as_nobody.stderr.read()[-2000:]
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(root.parent / f"{root.name}-state", ignore_errors=True)


@pytest.mark.slow
@needs_landlock
def test_with_landlock_grading_never_touches_the_checkout():
    python, root = _checkout_copy()
    try:
        before = _modes(root)
        grading = _start_grading(python, root)
        seen = set()
        while grading.poll() is None:
            seen.add(tuple(_modes(root).values()))
        assert grading.returncode == 0, grading.stderr.read()[-2000:]
        assert seen <= {tuple(before.values())}
        document = json.loads(next(root.glob("results-*.json")).read_text())
        assert document["score"] == 27 and "landlock v" in document["output"] and "a uid of its own" in document["output"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


class _Killed(BaseException):
    """Stands for a SIGKILL: nothing after the point it is raised at runs."""


def test_a_judge_killed_in_the_middle_of_hiding_leaves_its_guardian_the_originals(tmp_path, monkeypatch):
    from grader.sandbox import hiding as sandbox

    monkeypatch.setattr(sandbox, "HIDDEN_STATE_DIR", tmp_path / "state")
    private = [tmp_path / "solutions", tmp_path / "hidden"]
    for path in private:
        path.mkdir()
        path.chmod(0o755)
    chmod = os.chmod

    def killed_after_hiding(path, mode):  # the judge dies right after hiding the first folder
        chmod(path, mode)
        if Path(path) in private:
            raise _Killed

    monkeypatch.setattr(sandbox.os, "chmod", killed_after_hiding)
    with pytest.raises(_Killed):
        sandbox._update_hidden(private, holder=os.getpid(), joining=True)
    monkeypatch.setattr(sandbox.os, "chmod", chmod)
    assert (private[0].stat().st_mode & 0o777) == 0o700
    sandbox._update_hidden(private, holder=os.getpid(), joining=False)  # what its guardian does then
    assert [path.stat().st_mode & 0o777 for path in private] == [0o755, 0o755]
    assert list((tmp_path / "state").glob("hidden-*.json")) == []


def test_the_allow_list_never_holds_a_private_folder_or_anything_above_one(tmp_path):
    from grader.sandbox.worker import _allow_around, allowed_paths

    for folder in ("site-packages/solutions", "site-packages/torch", "site-packages/numpy", "stdlib"):
        (tmp_path / folder).mkdir(parents=True)
    found = []
    for path in (tmp_path / "site-packages", tmp_path / "stdlib"):
        _allow_around(str(path), [str(tmp_path / "site-packages" / "solutions")], found)
    assert found == [str(tmp_path / "site-packages" / "numpy"), str(tmp_path / "site-packages" / "torch"),
                     str(tmp_path / "stdlib")]
    from grader.sandbox.identity import private_paths

    private = private_paths()
    assert str(REPO_ROOT / "solutions") in private and str(REPO_ROOT / "grader") in private
    read, write = allowed_paths(str(tmp_path), private)
    overlapping = [(r, q) for r in read for q in private if r == q or r.startswith(q + os.sep) or q.startswith(r + os.sep)]
    assert overlapping == [] and write[0] == str(tmp_path)


@needs_landlock
def test_a_graded_submission_whose_attacks_are_refused_fails_those_checks_with_one_line(zygote, tmp_path, planted):
    from gradescope_format import assert_gradescope_results

    from grader.files import write_json_atomically

    reference = (REPO_ROOT / "solutions" / "logreg.py").read_text()
    attack = (f"def sigmoid(z):\n"
              f"    import os, socket\n"
              f"    open({str(planted['root'] / 'checkout' / 'solutions' / 'logreg.py')!r}).read()\n"
              f"    socket.create_connection(('127.0.0.1', {planted['port']}), timeout=2).close()\n"
              f"    os.kill(os.getppid(), 18)\n"
              f"    return _sigmoid(z)\n\n\ndef _sigmoid(z):")
    (tmp_path / "logreg.py").write_text(reference.replace("def sigmoid(z):", attack, 1))
    results = grade(tmp_path, "logreg", zygote=zygote, identity=choose_identity())
    assert not results.error
    sigmoid = next(o for o in results.outcomes if o.check == "test_sigmoid_values_and_shapes")
    assert not sigmoid.passed and sigmoid.reason.startswith("PermissionError: ") and "\n" not in sigmoid.reason
    assert 0 < results.score < 24  # the checks that do not touch sigmoid still pass
    document = json.loads(write_json_atomically(results.gradescope(), tmp_path / "results.json").read_text())
    assert_gradescope_results(document)


def test_a_worker_that_crashes_after_waiting_for_a_core_is_not_reported_as_out_of_cpu_time(zygote, tmp_path):
    """On a loaded machine a worker can wait for a core longer than its whole CPU limit: its wall time does not
    say it used that CPU time, the CPU time it used does."""
    from grader.sandbox.limits import SubmissionError

    (tmp_path / "waits.py").write_text("import os, time\ntime.sleep(2.5)\nos._exit(0)\n")  # 2.5 s waiting, no CPU
    (tmp_path / "spins.py").write_text("while True:\n    pass\n")
    says = {"waits.py": "the submission's process ended during importing",
            "spins.py": "importing the submission did not finish within its CPU time of 2 s"}
    for name, reason in says.items():
        sandbox = Sandbox(zygote, tmp_path / name, choose_identity(), Limits(call_seconds=1))  # CPU limit: 1 s + 1
        try:
            with pytest.raises(SubmissionError) as raised:
                sandbox.request("call", name="anything", args=[])
            assert reason in str(raised.value), (name, str(raised.value))
        finally:
            sandbox.close()
