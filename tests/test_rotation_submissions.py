"""Lab 5's checks against deliberately wrong implementations: each mistake is caught by the checks meant for it.

Each mistake runs the checks of the part it breaks (a pytest -k expression): the mistake must fail
exactly the expected ones among them. The reference and the stub run every check.
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

ROTATION = LabSources("rotation")

audit = audited("rotation")


def test_reference_gets_full_marks_and_the_stub_zero(tmp_path, zygote):
    results = ROTATION.grade(tmp_path / "reference", zygote, ROTATION.reference)
    assert failed(results) == set() and results.score == ROTATION.full
    results = ROTATION.grade(tmp_path / "stub", zygote, ROTATION.stub)
    assert results.score == 0 and failed(results) == ROTATION.checks


@pytest.mark.parametrize("mistake", ROTATION.mistake_names)
def test_each_mistake_is_caught_by_the_checks_meant_for_it(mistake, audit):
    assert_caught_as_pinned(audit, mistake)


@pytest.mark.parametrize("alternative", ROTATION.alternative_names)
def test_each_correct_alternative_keeps_full_marks(alternative, audit):
    assert_full_marks(audit, alternative)


def test_every_check_catches_at_least_one_mistake(audit):
    assert_every_check_catches_something(audit)
