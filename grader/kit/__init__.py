"""The check author's kit: everything a check file imports, and nothing of the grading pipeline.

A check is a pytest test in ``grader/checks/test_LAB.py`` (shown to students) or
``grader/hidden/test_LAB.py`` (graded, never shipped), or a further part ``test_LAB_PART.py`` beside
either: the folder alone decides which. It reaches
the submission only through the ``submission`` fixture (``program.Submission``) and builds longer
requests with ``program.Program``; ``expect`` holds the assertions whose messages a student reads,
``convergence`` the training checks, ``lifecycle`` and ``modules`` what LightningModules share.

May import: grader.course, grader.sandbox (the errors and the wire a request crosses), torch.
Never: grader.judge, grader.instructor, grader.cli.
"""
