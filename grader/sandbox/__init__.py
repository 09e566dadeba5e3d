"""The walls around submitted code, on both sides of the trust boundary.

The judge's side: ``zygote`` (one process that has imported torch and forks workers), ``client``
(``Sandbox``: one submission's worker, its requests, deadlines and kills), ``identity`` (the user
and uid a worker runs as, what Landlock lets it read), ``hiding`` (the file-mode fallback), ``limits``.
The worker's side: ``worker`` (the zygote's loop and a worker's confinement), ``ops`` (the operations
a check can ask for), ``wire`` (the frames and plain data that cross the boundary; ``archive``: a reply
read before ``torch.load`` sees it), ``landlock``, ``processes``. Pytest-xdist's remote
side is the model: the worker's modules import nothing of the judge's side.

May import: grader.course, grader.training (a worker trains), grader.files, datamodules, labs.
Never: grader.kit, grader.judge, grader.instructor, grader.cli.
"""
