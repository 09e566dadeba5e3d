"""The judge: grading one submission, in this process, which never imports submitted code.

``intake`` takes the lab file from a submission folder, ``policy`` reads the static rules off its
source, ``grade`` runs the lab's checks in a pytest session whose ``plugin`` turns outcomes into
``results.Results`` (its serialised form is Gradescope's results.json).

May import: grader.kit, grader.sandbox, grader.course, grader.files. Never: grader.instructor, grader.cli.
"""
