"""What every Gradescope results.json the grader writes must look like (shared by the test modules)."""

GRADESCOPE_TEST_KEYS = {"name", "number", "score", "max_score", "status", "output", "visibility"}


def assert_gradescope_results(document):
    assert isinstance(document["score"], (int, float)) and isinstance(document["execution_time"], (int, float))
    assert document["output_format"] == "text" and isinstance(document["output"], str)
    for test in document["tests"]:
        assert GRADESCOPE_TEST_KEYS <= set(test)
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in ("visible", "after_published")
