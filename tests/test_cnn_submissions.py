"""Lab 3's checks against deliberately wrong implementations: each mistake is caught by the checks meant for it.

The mistakes are the lab's table, grader/mistakes/cnn.py (what `litlabs audit` grades). Training
LeNet-5 costs seconds per check, so most mistakes are graded with every check but the two training
ones (their ``checks="not learns"``): they leave the model's training untouched, which the rows
graded in full show for the mistakes that do reach it. A last test proves every check catches at least one
mistake, so none of them is there for show.
"""
import pytest
from mutations import (
    LabSources,
    assert_caught_as_pinned,
    assert_every_check_catches_something,
    assert_full_marks,
    audited,
    failed,
)

from grader.judge.grade import NoChecksSelected

CNN = LabSources("cnn")
audit = audited("cnn")


def test_reference_gets_full_marks_and_the_stub_zero(tmp_path, zygote):
    results = CNN.grade(tmp_path / "reference", zygote, CNN.reference)
    assert failed(results) == set() and results.score == CNN.full == 31
    results = CNN.grade(tmp_path / "stub", zygote, CNN.stub)
    assert results.score == 0 and failed(results) == CNN.checks
    assert all(o.reason.startswith("NotImplementedError: ") and o.hint for o in results.outcomes)


@pytest.mark.parametrize("mistake", CNN.mistake_names)
def test_each_mistake_is_caught_by_the_checks_meant_for_it(mistake, audit):
    assert_caught_as_pinned(audit, mistake)


@pytest.mark.parametrize("alternative", CNN.alternative_names)
def test_each_correct_alternative_keeps_full_marks(alternative, audit):
    assert_full_marks(audit, alternative)


def test_every_check_catches_at_least_one_mistake(audit):
    assert_every_check_catches_something(audit)


def test_check_k_runs_only_the_matching_checks_and_says_when_none_match(tmp_path, zygote):
    results = CNN.grade(tmp_path / "a", zygote, CNN.reference, keyword="batchnorm")
    assert {o.check for o in results.outcomes} == {c for c in CNN.checks if "batchnorm" in c}
    assert results.score == 7
    with pytest.raises(NoChecksSelected, match="no check matches -k 'convolution_of_nothing'"):
        CNN.grade(tmp_path / "b", zygote, CNN.reference, keyword="convolution_of_nothing")
