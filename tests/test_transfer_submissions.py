"""Lab 4's checks against deliberately wrong implementations: each mistake is caught by the checks meant for it."""
import pytest
from mutations import (
    LabSources,
    assert_caught_as_pinned,
    assert_every_check_catches_something,
    assert_full_marks,
    audited,
    failed,
)

TRANSFER = LabSources("transfer")


audit = audited("transfer")


def test_reference_gets_full_marks_and_the_stub_zero(tmp_path, zygote):
    results = TRANSFER.grade(tmp_path / "reference", zygote, TRANSFER.reference)
    assert failed(results) == set() and results.score == TRANSFER.full
    results = TRANSFER.grade(tmp_path / "stub", zygote, TRANSFER.stub)
    assert results.score == 0 and failed(results) == TRANSFER.checks


@pytest.mark.parametrize("mistake", TRANSFER.mistake_names)
def test_each_mistake_is_caught_by_the_checks_meant_for_it(mistake, audit):
    assert_caught_as_pinned(audit, mistake)


@pytest.mark.parametrize("alternative", TRANSFER.alternative_names)
def test_each_correct_alternative_keeps_full_marks(alternative, audit):
    assert_full_marks(audit, alternative)


def test_every_check_catches_at_least_one_mistake(audit):
    assert_every_check_catches_something(audit)
