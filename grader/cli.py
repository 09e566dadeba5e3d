"""The ``litlabs`` command line.

Students: ``litlabs check LAB``, ``litlabs train LAB``.
Autograders: ``litlabs grade SUBMISSION``.
Instructors: ``litlabs release``, ``validate``, ``gradescope``, ``grade-all``.
"""
from __future__ import annotations

import argparse
import sys

from rich.console import Console

console = Console(stderr=False)
errors = Console(stderr=True)


class UsageError(Exception):
    """A problem with what the user asked for: reported in one line, exit code 2."""


def _add_train(sub):
    p = sub.add_parser("train", help="train a lab's model and plot its learning curve")
    p.add_argument("lab", help="lab name, e.g. logreg")
    p.add_argument("--model", help="which of the lab's models (logreg: softmax or binary)")
    p.add_argument("--impl", default="solutions",
                   help="solutions, labs, a directory holding LAB.py, or a .py file (default: solutions)")
    p.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--strategy", default="auto", choices=["auto", "ddp", "ddp_spawn"])
    p.add_argument("--precision", default="32-true")
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--batch-size", type=int, help="examples per process per step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="directory with torchvision data files (default: the offline MNIST subset)")
    p.add_argument("--download", action="store_true", help="let torchvision download the data set")
    p.add_argument("--run-dir", help="where logs, the plot and weights go (default: runs/LAB-MODEL)")
    p.add_argument("--no-progress-bar", action="store_true")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from .labs import get_lab
    from .train import train_lab
    from .trainer import TrainConfig

    lab = get_lab(args.lab)
    model = args.model or lab.default_model
    spec = lab.models.get(model)
    config = TrainConfig(
        accelerator=args.accelerator, devices=args.devices, strategy=args.strategy,
        precision=args.precision, seed=args.seed,
        max_epochs=args.max_epochs or (spec.max_epochs if spec else 10),
        run_dir=args.run_dir or f"runs/{lab.name}-{model}",
        progress_bar=False if args.no_progress_bar else None,
    )
    train_lab(lab.name, model, impl=args.impl, data_dir=args.data_dir, download=args.download,
              batch_size=args.batch_size, config=config, console=console)
    return 0


def _add_grade(sub):
    p = sub.add_parser("grade", help="grade a submission directory (all checks, hidden ones included)")
    p.add_argument("submission", help="directory holding the submitted lab file(s); 'solutions' or 'labs' for ours")
    p.add_argument("--lab", default="logreg")
    p.add_argument("--results", help="write Gradescope's results.json here (always written, also on failure)")
    p.add_argument("--format", choices=["rich", "json"], default="rich", help="what to print")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("check", help="check your labs/LAB.py with the visible checks")
    p.add_argument("lab", help="lab name, e.g. logreg")
    p.add_argument("--impl", default="labs", help="directory holding LAB.py (default: labs)")
    p.set_defaults(func=cmd_check)


def _submission_dir(name: str) -> str:
    from .labs import REPO_ROOT

    return str(REPO_ROOT / name) if name in ("solutions", "labs") else name


def cmd_grade(args) -> int:
    import json

    from .grade import grade
    from .report import Results, print_table, write_json_atomically

    try:
        results = grade(_submission_dir(args.submission), args.lab)
        code = 1 if results.error else 0  # 0: grading completed, whatever the score
    except Exception as err:  # bad input or a grader failure: still leave a results file
        results = Results(lab=args.lab, error=str(err))
        code = 2
    if args.results:
        write_json_atomically(results.gradescope(), args.results)
    if args.format == "json":
        print(json.dumps(results.gradescope(), indent=2))
    else:
        print_table(results, console)
    if code:
        errors.print(f"[red]error:[/] {results.error}", highlight=False)
    return code


def cmd_check(args) -> int:
    from .grade import grade
    from .report import print_table

    results = grade(_submission_dir(args.impl), args.lab, include_hidden=False)
    print_table(results, console, show_hidden=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="litlabs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_grade(sub)
    return parser


def main(argv=None) -> int:
    from datamodules import DataError

    from .labs import LabError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, LabError, DataError) as err:
        errors.print(f"[red]error:[/] {err}", highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
