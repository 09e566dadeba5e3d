"""The course staff's tools; not shipped to students.

``release`` makes the stubs and handouts from the reference and the student release, ``validate``
proves every check fails on the stub and passes on the reference, ``audit`` runs the tables of
mistakes in ``grader/mistakes/``, ``grade_all`` grades a class into a gradebook, ``gradescope``
builds the autograder bundle, ``backbones`` makes the pretrained weights the data layer ships.

May import: everything below it (grader.judge, kit, sandbox, training, course). Never: grader.cli.
"""
