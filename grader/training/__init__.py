"""Training, the same for a student's ``litlabs train`` and a worker's fit: the trainer factory
(``trainer``), the train command (``train``), learning-curve plots (``plots``) and the batch norm that
synchronises its statistics across DDP processes on CPU (``sync_batchnorm``).

May import: grader.course, datamodules, lightning. Never: grader.sandbox, kit, judge, instructor, cli.
"""
