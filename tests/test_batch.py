"""`litlabs grade-all`: a folder of mixed submissions into a CSV gradebook, in parallel, resumable."""
import csv
import json

import pytest

from grader.cli import main
from grader.labs import REPO_ROOT

REFERENCE = (REPO_ROOT / "solutions" / "logreg.py").read_text()
STUB = (REPO_ROOT / "labs" / "logreg.py").read_text()
FUTURE = "from __future__ import annotations\n"


def at_top(code):
    return REFERENCE.replace(FUTURE, FUTURE + code, 1)


SUBMISSIONS = {  # student -> (source of logreg.py, expected score)
    "ada": (REFERENCE, 24),
    "bo": (REFERENCE.replace("def softmax(logits):", "def softmax(logits):\n    return torch.softmax(logits, 1)"), 24),
    "cy": (STUB, 0),
    "di": (STUB, 0),
    "ed": (REFERENCE.replace("err = a - y.to(a.dtype)", "err = y.to(a.dtype) - a"), 17),
    "fa": (REFERENCE.replace("    shifted = logits - logits.max(dim=1, keepdim=True).values\n    exp", "    shifted = logits\n    exp"), 23),
    "gu": (at_top("raise RuntimeError('crash at import')\n"), 0),
    "hu": (at_top("import os\nos.kill(os.getpid(), 9)\n"), 0),
    "io": (at_top("while True:\n    pass\n"), 0),
    "jo": (at_top("for _ in range(200_000):\n    print('flood ' * 20)\n"), 24),
}


@pytest.mark.slow
def test_grade_all_mixed_submissions_with_two_jobs_and_resume(tmp_path, capsys):
    submissions = tmp_path / "submissions"
    for student, (source, _) in SUBMISSIONS.items():
        (submissions / student).mkdir(parents=True)
        (submissions / student / "logreg.py").write_text(source)
    out = tmp_path / "grades.csv"
    assert main(["grade-all", str(submissions), "--out", str(out), "--jobs", "2"]) == 0

    rows = list(csv.DictReader(out.open()))
    assert [r["student"] for r in rows] == sorted(SUBMISSIONS)
    for row in rows:
        assert float(row["score"]) == SUBMISSIONS[row["student"]][1], row
        assert row["max"] == "24.0" and row["status"] == "graded" and row["lab"] == "logreg"
    # per-check columns hold the points each student earned on that check
    header = next(csv.reader(out.open()))
    assert len(header) == 4 + 19 + 2
    ed = next(r for r in rows if r["student"] == "ed")
    assert ed["logistic_gradients equals autograd's gradient of the mean BCE"] == "0.0"
    assert ed["softmax is finite and exact for logits of ±1000"] == "1.0"
    results = json.loads((tmp_path / "grades-results" / "io.json").read_text())
    assert "did not finish within" in results["output"]

    # Resume: nothing is regraded, the gradebook is the same
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "grades-results").iterdir()}
    first = out.read_text()
    (tmp_path / "grades-results" / "cy.json").unlink()
    assert main(["grade-all", str(submissions), "--out", str(out), "--jobs", "2"]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "grades-results").iterdir()}
    assert {name for name in after if after[name] != before.get(name)} == {"cy.json"}
    assert "graded 1, reused 9" in " ".join(capsys.readouterr().out.split())
    assert out.read_text().split("\n")[0] == first.split("\n")[0]


def test_grade_all_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["grade-all", str(tmp_path / "none"), "--out", str(tmp_path / "g.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
