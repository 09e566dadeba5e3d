"""Lab 2's checks against deliberately wrong implementations: each mistake is caught by the checks meant for it.

The mistakes are the lab's table, grader/mistakes/mlp.py (what `litlabs audit` grades): each is the
reference with one mistake, and names the checks that must catch it; a last test proves every check
catches at least one mistake, so none of them is there for show.
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

MLP = LabSources("mlp")


audit = audited("mlp")


def test_reference_gets_full_marks_and_the_stub_zero(tmp_path, zygote):
    results = MLP.grade(tmp_path, zygote, MLP.reference)
    assert failed(results) == set() and results.score == MLP.full == 36
    results = MLP.grade(tmp_path, zygote, MLP.stub)
    assert results.score == 0 and failed(results) == MLP.checks
    assert all(o.reason.startswith("NotImplementedError: ") and o.hint for o in results.outcomes)


@pytest.mark.parametrize("mistake", MLP.mistake_names)
def test_each_mistake_is_caught_by_the_checks_meant_for_it(mistake, audit):
    assert_caught_as_pinned(audit, mistake)


@pytest.mark.parametrize("alternative", MLP.alternative_names)
def test_each_correct_alternative_keeps_full_marks(alternative, audit):
    assert_full_marks(audit, alternative)


def test_every_check_catches_at_least_one_mistake(audit):
    assert_every_check_catches_something(audit)


def test_a_backward_that_uses_autograd_is_named_in_the_reason(tmp_path, zygote):
    results = MLP.grade(tmp_path, zygote, MLP.variant("Linear: backward secretly uses autograd"))
    reason = next(o.reason for o in results.outcomes if o.check == "test_linear_backward_is_written_by_hand")
    # the static rule names the line (grader/judge/policy/); the worker's engine swap would say it at run time
    assert "LinearFunction.backward uses torch.enable_grad" in reason and "mlp.py, line" in reason, reason


def test_without_the_static_rule_the_engine_swap_still_names_autograd(tmp_path, zygote, monkeypatch):
    monkeypatch.setenv("LITLABS_NO_POLICY", "1")
    results = MLP.grade(tmp_path, zygote, MLP.variant("Linear: backward secretly uses autograd"))
    reason = next(o.reason for o in results.outcomes if o.check == "test_linear_backward_is_written_by_hand")
    assert "autograd was used inside a backward that must be written by hand" in reason


def test_a_wrong_submission_graded_twice_gets_the_same_outcomes(tmp_path, zygote):
    """A mistake whose effect depends on the order of the graph walk: that order must not vary between runs."""
    source = MLP.variant("Value: a gradient assigned instead of accumulated")
    first, second = (MLP.grade(tmp_path / run, zygote, source) for run in ("a", "b"))
    assert [(o.check, o.passed, o.reason) for o in first.outcomes] == \
        [(o.check, o.passed, o.reason) for o in second.outcomes]


def test_a_case_that_fails_inside_a_batched_request_is_named(tmp_path, zygote):
    """The operator cases go to the worker in one request; the reason still says which case raised."""
    forgot_rtruediv = MLP.reference.replace("    def __rtruediv__(self, other):  # other / self\n"
                                            "        return other * self**-1\n", "")
    assert forgot_rtruediv != MLP.reference
    results = MLP.grade(tmp_path, zygote, forgot_rtruediv, keyword="value_operators")
    reason = next(o.reason for o in results.outcomes if o.check == "test_value_operators_match_autograd")
    # (the judge asks for b.__rtruediv__(3) by name: the error is that it is missing)
    assert "__rtruediv__" in reason and reason.endswith("; in Value: 3 / b with a = 1.5, b = -2"), reason
