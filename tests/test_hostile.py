"""Hostile submissions for Labs 2–5 against the grader, each next to its honest control.

Each file in tests/hostile/ is a whole submission written as a student who read the grader's
source would write it (see its docstring), tagged with its lab, the category of the threat model
it attacks (README, "Threat model"), the checks it targets (a -k expression) and its honest
control in tests/hostile/controls/. Every attack is graded twice:

- with the static policy (grader/judge/policy/) on, as every grading runs: it scores no more than its
  control (most are refused before they run, with the line that broke the rules);
- with the policy off, so that the walls behind it are what is tested: it still scores no more
  than its control, the grading ends ``graded`` (never a grader error) within its time budget,
  and nothing it started is left running. An attack tagged ``wall: files`` reads what only a file wall
  (Landlock, or a uid of its own as root) keeps from it: without either it is skipped, as the README's
  threat model says nothing separates a worker from its grader there.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from grader.course import REPO_ROOT
from grader.judge.grade import grade
from grader.sandbox import processes
from grader.sandbox.identity import choose_identity, landlock_abi
from grader.sandbox.limits import Limits

HOSTILE = REPO_ROOT / "tests" / "hostile"
LIMITS = Limits(call_seconds=10, import_seconds=15, total_seconds=120)


def header(path: Path) -> dict:
    doc = re.search(r'"""(.*?)"""', path.read_text(), re.S).group(1)
    return dict(re.findall(r"^(lab|category|targets|control|effect|wall): *(.+)$", doc, re.M))


ATTACKS = {path.stem: header(path) for path in sorted(HOSTILE.glob("*_*.py")) if header(path).get("lab")}


def grade_file(path: Path, folder: Path, zygote, keyword: str):
    lab = header(path)["lab"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{lab}.py").write_text(path.read_text())
    started = time.monotonic()
    results = grade(folder, lab, zygote=zygote, identity=choose_identity(), limits=LIMITS, keyword=keyword)
    return results, time.monotonic() - started


_controls: dict = {}


def control_score(name: str, keyword: str, tmp_path, zygote) -> float:
    """The honest control's score on the same checks (graded once per session and selection)."""
    key = (name, keyword)
    if key not in _controls:
        results, _ = grade_file(HOSTILE / "controls" / name, tmp_path / "control", zygote, keyword)
        assert not results.error, results.error
        _controls[key] = results.score
    return _controls[key]


def test_there_are_two_attacks_per_category_of_the_threat_model():
    categories = [int(meta["category"]) for meta in ATTACKS.values()]
    assert all(categories.count(c) >= 2 for c in range(1, 8)), sorted(categories)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_with_the_policy_an_attack_scores_no_more_than_its_control(name, tmp_path, zygote):
    meta = ATTACKS[name]
    results, _ = grade_file(HOSTILE / f"{name}.py", tmp_path / "attack", zygote, meta["targets"])
    assert not results.error, results.error
    assert results.score <= control_score(meta["control"], meta["targets"], tmp_path, zygote), results.notes


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ATTACKS))
def test_behind_the_policy_the_walls_hold(name, tmp_path, zygote, monkeypatch):
    meta = ATTACKS[name]
    if meta.get("wall") == "files" and not landlock_abi() and not choose_identity().isolated:
        pytest.skip("no file wall here (no Landlock, and the worker is the grader's own user): it reads what the "
                    "grader reads, as the README's threat model says; this attack is graded as root or with Landlock")
    monkeypatch.setenv("LITLABS_NO_POLICY", "1")
    results, seconds = grade_file(HOSTILE / f"{name}.py", tmp_path / "attack", zygote, meta["targets"])
    assert not results.error, results.error  # graded, not a grader error
    control = control_score(meta["control"], meta["targets"], tmp_path, zygote)
    assert results.score <= control, [(o.check, o.score, o.reason) for o in results.outcomes]
    assert seconds < LIMITS.total_seconds + 60
    time.sleep(0.3)  # the zygote sweeps orphans every 0.1 s
    assert processes.descendants(zygote.process.pid) == set(), "a process of the submission outlived it"


SABOTEURS = [name for name, meta in ATTACKS.items() if meta.get("effect") == "sabotage"]


@pytest.mark.slow
@pytest.mark.parametrize("landlock", [True, False])
@pytest.mark.parametrize("attack", SABOTEURS)
def test_a_hostile_classmate_graded_first_costs_the_next_student_nothing(attack, landlock, tmp_path):
    """grade-all --jobs 2 as root, as on a grading server: the first student attacks, the second is the reference."""
    import csv
    import json
    import os
    import shutil
    import subprocess
    import tempfile

    from sandbox_python import sandbox_python

    if os.geteuid() != 0:
        pytest.skip("needs root: this is how a grading server runs a batch")
    python = sandbox_python()
    lab = ATTACKS[attack]["lab"]
    folder = Path(tempfile.mkdtemp(prefix="litlabs-sabotage-"))  # tmp_path is under a root-only folder
    try:
        for student, source in (("a_attacker", (HOSTILE / f"{attack}.py").read_text()),
                                ("b_victim", (REPO_ROOT / "solutions" / f"{lab}.py").read_text()
                                 + "\n# HOSTILE-TEST-VICTIM\n")):
            (folder / "submissions" / student).mkdir(parents=True)
            (folder / "submissions" / student / f"{lab}.py").write_text(source)
        # A copy of the checkout: without Landlock the grading hides its reference by file modes, which must not
        # touch the checkout other tests read at the same time.
        for name in ("grader", "datamodules", "labs", "solutions"):
            shutil.copytree(REPO_ROOT / name, folder / "checkout" / name, ignore=shutil.ignore_patterns("__pycache__"))
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        env = {**os.environ, "PYTHONPATH": str(folder / "checkout"), "LITLABS_NO_POLICY": "1"}  # behind the policy
        env.pop("LITLABS_NO_LANDLOCK", None)
        if not landlock:
            env["LITLABS_NO_LANDLOCK"] = "1"
        done = subprocess.run([str(python), "-m", "grader.cli", "grade-all", "submissions", "--out", "grades.csv",
                               "--jobs", "2", "--lab", lab], cwd=folder, env=env, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        rows = {row["student"]: row for row in csv.DictReader(open(folder / "grades.csv"))}
        victim = json.loads((folder / "grades-results" / "b_victim.json").read_text())
        assert victim["extra_data"]["litlabs"]["status"] == "graded", victim["output"][-2000:]
        assert victim["score"] == victim["extra_data"]["litlabs"]["max_score"], \
            victim["output"][-1500:] + str([t["output"][:300] for t in victim["tests"] if t["status"] != "passed"][:2])
        assert "a_attacker" in rows
        time.sleep(0.5)
        outputs = [json.loads(path.read_text())["output"] for path in (folder / "grades-results").glob("*.json")]
        uids = {int(uid) for output in outputs for uid in re.findall(r"a uid of its own \((\d+), no account\)", output)}
        assert len(uids) == 2, outputs  # two students, two uids
        left = [pid for uid in uids for pid in processes.processes_of_user(uid)]
        assert left == [], "processes of a sandbox uid outlived the batch"
        assert not list(Path(tempfile.gettempdir()).glob("hostile-stolen-*")), "a classmate's file was copied out"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
