import os

import pytest

# Keep Lightning quiet and progress bars off in the test logs.
os.environ.setdefault("CI", "1")


@pytest.fixture(scope="session")
def zygote():
    """A warm zygote (torch and Lightning imported) for every grading of the session.

    Each grading forks its workers from it, so a submission cannot change what the next one sees
    (tests/test_batch.py proves it); one zygote instead of one per module saves its start-up each time.
    """
    from grader.sandbox.zygote import Zygote

    with Zygote() as z:
        yield z


def pytest_configure(config):
    """Every skipped test says why in the summary, without -rs: a newcomer sees what a skip needs (e.g. root)."""
    chars = config.option.reportchars or ""
    if not any(c in chars for c in "sSaAN"):
        config.option.reportchars = chars + "s"
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and "s" not in reporter.reportchars:
            reporter.reportchars += "s"
