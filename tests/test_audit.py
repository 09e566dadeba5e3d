"""`litlabs audit`: an instructor's own table graded, the mutation score and what needs attention reported."""
import subprocess
import sys
import textwrap

import pytest

from grader.course import LABS, REPO_ROOT
from grader.instructor.audit import Alternative, AuditError, Mistake, apply, variants_of

REFERENCE = (REPO_ROOT / "solutions" / "logreg.py").read_text()

# An instructor's table: one mistake the checks catch, one they cannot (the optimizer is the handout's
# choice but nothing trains long enough to tell Adam from SGD here), and one correct alternative.
TABLE = textwrap.dedent('''
    from grader.instructor.audit import Alternative, Mistake

    MISTAKES = [
        Mistake("gradient with the wrong sign", replace=[("err = a - y.to(a.dtype)", "err = y.to(a.dtype) - a")]),
        Mistake("a docstring changed", replace=[('"""', '"""Not a mistake at all. ')]),
    ]
    ALTERNATIVES = [
        Alternative("softmax from torch", replace=[
            ("def softmax(logits):\\n", "def softmax(logits):\\n    return torch.softmax(logits, dim=1)\\n")]),
    ]
''')


def litlabs(*args, cwd):
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_audit_reports_the_mutation_score_and_what_no_check_catches(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "logreg.py").write_text(TABLE)
    done = litlabs("audit", "logreg", "--mistakes", "mine", "--only-mine", cwd=tmp_path)  # relative, elsewhere
    assert done.returncode == 1, done.stderr  # 1 of 2 caught: below the default 95 %
    out = done.stdout
    assert "Lab logreg: mutation score 1/2 (50.0%); alternatives at full marks 1/1" in out
    assert "mistakes no check catches:\n  - a docstring changed" in out
    row = next(line for line in out.splitlines() if "M01 gradient with the wrong sign" in line)
    assert row.split()[-19:].count("x") >= 2  # the gradient checks fail on it
    assert "mutation score 50.0% is below 95%" in done.stderr
    done = litlabs("audit", "logreg", "--mistakes", "mine", "--only-mine", "--min-score", "0.5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("args, message", [
    (["audit", "logreg", "--mistakes", "nowhere", "--only-mine"], "--mistakes nowhere: no such directory"),
    (["audit", "logreg", "--only-mine"], "--only-mine grades the tables of --mistakes DIR"),
    (["audit", "nolab"], "unknown lab 'nolab'"),
    (["audit", "logreg", "--min-score", "95"], "--min-score 95: give a fraction between 0 and 1"),
])
def test_audit_refuses_bad_arguments_in_one_line(args, message, tmp_path):
    done = litlabs(*args, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_malformed_or_stale_table_is_named(tmp_path):
    (tmp_path / "logreg.py").write_text("MISTAKES = [\n")
    with pytest.raises(AuditError, match=r"logreg.py: cannot be read \(SyntaxError"):
        variants_of("logreg", [tmp_path], shipped=False)
    (tmp_path / "logreg.py").write_text("MISTAKES = [('a', 'b')]\n")
    with pytest.raises(AuditError, match="must hold grader.instructor.audit.Mistake"):
        variants_of("logreg", [tmp_path], shipped=False)
    with pytest.raises(AuditError, match="edit 1's text is not in the reference"):
        apply(REFERENCE, Mistake("stale", replace=[("text the reference does not hold", "")]))


@pytest.mark.parametrize("lab", list(LABS))
def test_every_shipped_variant_applies_and_parses(lab):
    import ast

    reference = (REPO_ROOT / "solutions" / f"{lab}.py").read_text()
    mistakes, alternatives = variants_of(lab)
    assert len(mistakes) >= 40 and len(alternatives) >= 5
    for variant in mistakes + alternatives:
        source = apply(reference, variant)
        assert source != reference, variant.name
        ast.parse(source)
    assert all(isinstance(a, Alternative) for a in alternatives)
