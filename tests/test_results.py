"""Results is typed, and its saved form is Gradescope's results.json: save and load round-trip."""
from __future__ import annotations

import json

import pytest
from gradescope_format import assert_gradescope_results

from grader.judge.plugin import Outcome
from grader.judge.results import Results, ResultsFileError, merge


def _results(**changes) -> Results:
    outcomes = [Outcome("test_a", "a holds", 2.0, False, True),
                Outcome("test_b", "b holds", 1.0, True, False, reason="ValueError: bad shape", hint="look at dim"),
                Outcome("test_c", "c holds", 1.5, False, False, reason="grader error (…)", grader_error=True)]
    fields = dict(lab="logreg", outcomes=outcomes, notes=["Ran as user nobody."], problem="",
                  confinement="Confinement: landlock v7", execution_time=3.25)
    return Results(**{**fields, **changes})


@pytest.mark.parametrize("changes", [{}, {"error": "1 check(s) broke inside the grader"},
                                     {"problem": "no file logreg.py", "outcomes": []}, {"wall_time": 12.5}])
def test_save_then_load_gives_the_same_results(tmp_path, changes):
    results = _results(**changes)
    path = results.save(tmp_path / "results.json")
    assert_gradescope_results(json.loads(path.read_text()))
    assert Results.load(path) == results
    assert Results.load(path).score == results.score and Results.load(path).status == results.status


def test_merged_results_round_trip(tmp_path):
    merged = merge([_results(), _results(lab="mlp")])
    assert Results.load(merged.save(tmp_path / "r.json")) == merged


@pytest.mark.parametrize("text", ["", "{", "[]", '{"score": 3}', '{"score": 3, "tests": [], "extra_data": {}}'])
def test_a_file_that_is_not_a_litlabs_results_file_is_refused_by_name(tmp_path, text):
    (tmp_path / "r.json").write_text(text)
    with pytest.raises(ResultsFileError, match="r.json is not a litlabs results file"):
        Results.load(tmp_path / "r.json")
    with pytest.raises(ResultsFileError, match="missing.json"):
        Results.load(tmp_path / "missing.json")
