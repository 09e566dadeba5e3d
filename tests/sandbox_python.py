"""The interpreter outside /root that user nobody can run (made by .ci/sandbox-env), for tests that need it."""
import os
from pathlib import Path

import pytest

SANDBOX_PYTHON = Path(os.environ.get("LITLABS_SANDBOX_PYTHON", "/opt/litlabs-venv/bin/python"))


def sandbox_python() -> Path:
    """The interpreter, when this test runs as root and it exists; else skip (fail in CI)."""
    from grader.labs import REPO_ROOT
    from grader.sandbox import _others_can_read

    usable = (os.geteuid() == 0 and SANDBOX_PYTHON.exists() and _others_can_read(SANDBOX_PYTHON)
              and _others_can_read(REPO_ROOT / "grader"))
    if not usable:
        if os.environ.get("LITLABS_REQUIRE_SANDBOX"):
            pytest.fail(f"needs root and {SANDBOX_PYTHON}, usable by user nobody (run .ci/sandbox-env)")
        pytest.skip(f"needs root and an interpreter outside /root at {SANDBOX_PYTHON} (run .ci/sandbox-env)")
    return SANDBOX_PYTHON
