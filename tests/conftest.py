import os

import pytest

# Keep Lightning quiet and progress bars off in the test logs.
os.environ.setdefault("CI", "1")


@pytest.fixture(scope="module")
def zygote():
    """A warm zygote (torch imported) for the gradings of one test module."""
    from grader.sandbox import Zygote

    with Zygote() as z:
        yield z
