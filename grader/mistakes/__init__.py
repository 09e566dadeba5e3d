"""Each lab's tables of mistakes and correct alternatives, read by ``litlabs audit`` (grader/instructor/audit.py).

``LAB.py`` is the pinned table: each mistake names the checks that must fail on it, and the tests
assert exactly that. ``students/LAB.py`` holds mistakes and alternatives written by independent
students (given the handout, not the checks): each mistake must be caught by some check, each
alternative must keep full marks. Both quote the reference, so this folder ships with the instructor's
repository only: never in the student release or the Gradescope bundle, never readable by a submission.
"""
