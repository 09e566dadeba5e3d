"""The ``litlabs`` command line.

Students: ``litlabs check LAB``, ``litlabs train LAB``.
Autograders: ``litlabs grade SUBMISSION``.
Instructors: ``litlabs release``, ``validate``, ``gradescope``, ``grade-all``, ``audit``: these live in
grader/instructor/, which the student release leaves out, so they are imported only when called.
"""
from __future__ import annotations

import argparse
import sys

from rich.console import Console

# soft_wrap: long messages stay on one line when piped or logged (tables still fit the width)
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


class UsageError(Exception):
    """A problem with what the user asked for: reported in one line, exit code 2."""


def _add_train(sub):
    p = sub.add_parser("train", help="train a lab's model and plot its learning curve")
    p.add_argument("lab", help="lab name, e.g. logreg")
    p.add_argument("--model", help="which of the lab's models (logreg: softmax or binary)")
    p.add_argument("--impl", help="solutions, labs, a directory holding LAB.py, or a .py file "
                                  "(default: solutions in the instructor repository, labs in a student release)")
    p.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--devices", type=int, default=1, help="processes (CPU) or GPUs per node")
    p.add_argument("--num-nodes", type=int, default=1,
                   help="machines taking part (under torchrun or SLURM; see the README's 'Several machines')")
    p.add_argument("--strategy", default="auto", choices=["auto", "ddp", "ddp_spawn"])
    p.add_argument("--precision", default="32-true")
    p.add_argument("--sync-batchnorm", action="store_true",
                   help="batch norm uses the statistics of the global batch across processes (SyncBatchNorm)")
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many training steps (a quick run)")
    p.add_argument("--batch-size", type=int, help="examples per process per step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="directory with torchvision data files (default: the offline MNIST subset)")
    p.add_argument("--download", action="store_true", help="let torchvision download the data set")
    p.add_argument("--run-dir", help="where logs, the plot and weights go, one version_N folder per run "
                                     "(default: runs/LAB-MODEL)")
    p.add_argument("--backbone", help="a pretrained backbone (transfer: digits04; rotation, Lab 5's pretext network; "
                                      "or resnet18 from the torch cache, which trains on CIFAR-10 from --data-dir)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="an argument for the model, e.g. --set dropout=0 --set hidden=[512,256] (repeatable)")
    p.add_argument("--no-progress-bar", action="store_true")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from grader.course import get_lab

    lab = get_lab(args.lab)  # a mistyped name is answered before torch is imported
    if args.backbone:
        args.set.append(f"backbone={args.backbone}")
    model = lab.model_for(args.model, args.backbone)
    spec = lab.models.get(model)
    from grader.training.train import train_lab
    from grader.training.trainer import TrainConfig

    config = TrainConfig(
        accelerator=args.accelerator, devices=args.devices, num_nodes=args.num_nodes, strategy=args.strategy,
        precision=args.precision, sync_batchnorm=args.sync_batchnorm, seed=args.seed,
        max_epochs=args.max_epochs or (spec.max_epochs if spec else 10), max_steps=args.max_steps,
        run_dir=args.run_dir or f"runs/{lab.name}-{model}",
        progress_bar=False if args.no_progress_bar else None,
    )
    try:
        train_lab(lab.name, model, impl=args.impl or default_impl(), data_dir=args.data_dir,
                  download=args.download, batch_size=args.batch_size, config=config, console=console,
                  model_args=_model_args(args.set))
    except NotImplementedError as err:  # a stub: say what is left, not a traceback
        where = str(err).rstrip(".") or "a function"  # a stub's region names its place: "SoftmaxRegression.forward"
        raise UsageError(f"the {lab.name} code is not finished: {where} still raises NotImplementedError. "
                         f"Run `litlabs check {lab.name}` to see what is left.") from None
    return 0


def _model_args(pairs: list[str]) -> dict:
    """--set NAME=VALUE pairs as keyword arguments; VALUE is a Python literal, or else a string."""
    import ast

    found = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals or not name.isidentifier():
            raise UsageError(f"--set takes NAME=VALUE, e.g. --set dropout=0; got {pair!r}")
        try:
            found[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            found[name] = text
    return found


def _add_grade(sub):
    p = sub.add_parser("grade", help="grade a submission directory (all checks, hidden ones included)")
    p.add_argument("submission", help="directory holding the submitted lab file(s); 'solutions' or 'labs' for ours")
    p.add_argument("--lab", nargs="+", help="lab(s) to grade (default: every lab whose file the submission holds)")
    p.add_argument("--results", help="write Gradescope's results.json here (always written, also on failure)")
    p.add_argument("--format", choices=["rich", "json"], default="rich", help="what to print")
    p.add_argument("--require-sandbox-user", action="store_true",
                   help="refuse to run submitted code unless it can run as a separate unprivileged user")
    p.add_argument("--require-confinement", action="store_true",
                   help="refuse to run submitted code unless Landlock confines what it can read and write")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("check", help="check your labs/LAB.py with the visible checks")
    p.add_argument("lab", help="lab name, e.g. logreg")
    p.add_argument("--impl", default="labs", help="directory holding LAB.py (default: labs)")
    p.add_argument("-k", dest="keyword", metavar="EXPR",
                   help="run only the checks whose names match, as pytest -k (e.g. -k conv2d, -k 'not learns')")
    p.set_defaults(func=cmd_check)


def cmd_grade(args) -> int:
    import json

    from grader.judge.grade import grade_labs
    from grader.judge.results import print_table

    results, code = grade_labs(args.submission, args.lab, args.require_sandbox_user,
                               require_confinement=args.require_confinement)
    if args.results:
        results.save(args.results)
    if args.format == "json":
        print(json.dumps(results.gradescope(), indent=2))
    elif results.outcomes:
        print_table(results, console)
    if code:
        errors.print(f"[red]error:[/] {results.error}", highlight=False)
    return code


def cmd_check(args) -> int:
    from grader.judge.grade import grade_labs
    from grader.judge.results import print_table

    results, code = grade_labs(args.impl, [args.lab], include_hidden=False, keyword=args.keyword)
    if results.outcomes:
        print_table(results, console, show_hidden=False)
    if code:
        errors.print(f"[red]error:[/] {results.error}", highlight=False)
    return code


def _has_instructor_wing() -> bool:
    """Whether grader/instructor/ sits beside this file: the student release leaves it out.

    Asked of the folder, not of the import system: another checkout's editable install could answer
    ``import grader.instructor`` with its own.
    """
    from pathlib import Path

    return (Path(__file__).resolve().parent / "instructor" / "__init__.py").is_file()


def _instructor_tool(func):
    """An instructor subcommand: where grader/instructor/ is absent (a student release), say so in one line."""
    def run(args) -> int:
        if not _has_instructor_wing():
            raise UsageError(f"`litlabs {args.command}` is an instructor tool, not part of the student release")
        return func(args)

    return run


def _add_instructor(sub):
    p = sub.add_parser("release", help="regenerate labs/ (stubs, handouts) from solutions/, or a student release")
    p.add_argument("labs", nargs="*", help="labs to release (default: all)")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 and show the diff if labs/ is stale")
    p.add_argument("--student", metavar="OUT_DIR", help="write a self-contained student repository to OUT_DIR")
    p.set_defaults(func=_instructor_tool(cmd_release))

    p = sub.add_parser("gradescope", help="build a Gradescope autograder zip")
    p.add_argument("out", help="the zip to write, e.g. autograder.zip")
    p.add_argument("--lab", nargs="+", help="labs the bundle grades (default: all)")
    p.set_defaults(func=_instructor_tool(cmd_gradescope))

    p = sub.add_parser("grade-all", help="grade a folder of submissions (one sub-folder per student) into a CSV")
    p.add_argument("submissions", help="directory with one sub-directory per student")
    p.add_argument("--out", required=True, help="the CSV gradebook to write; results go beside it")
    p.add_argument("--jobs", type=int, default=2, help="students graded at once (default 2)")
    p.add_argument("--lab", nargs="+",
                   help="lab(s) to grade (default: every lab whose file any of the submissions holds)")
    p.add_argument("--force", action="store_true",
                   help="regrade every student (by default a rerun regrades only rows that are not 'graded')")
    p.set_defaults(func=_instructor_tool(cmd_grade_all))

    p = sub.add_parser("validate", help="prove every check passes on the reference and fails on the stub")
    p.add_argument("labs", nargs="*", help="labs to validate (default: all)")
    p.set_defaults(func=_instructor_tool(cmd_validate))

    p = sub.add_parser("audit", help="grade each lab's table of student mistakes and correct alternatives: "
                                     "the mutation score, what no check catches, what is too strict")
    p.add_argument("labs", nargs="*", help="labs to audit (default: all)")
    p.add_argument("--mistakes", metavar="DIR", action="append", default=[],
                   help="a folder of your own LAB.py tables (MISTAKES, ALTERNATIVES) to add; may be repeated")
    p.add_argument("--min-score", type=float, default=0.95, metavar="FRACTION",
                   help="exit 1 when a lab's mutation score is below this (default 0.95)")
    p.add_argument("--jobs", type=int, default=2, help="submissions graded at once (default 2)")
    p.add_argument("--only-mine", action="store_true",
                   help="grade only the tables given with --mistakes, not the ones litlabs ships")
    p.add_argument("--quick", action="store_true",
                   help="grade each mistake only with the checks its table names (skips long trainings)")
    p.set_defaults(func=_instructor_tool(cmd_audit))


def cmd_audit(args) -> int:
    from grader.course import LABS, get_lab
    from grader.instructor.audit import audit_labs
    from grader.instructor.release import generated_files

    names = args.labs or list(LABS)
    for name in names:
        get_lab(name)
    generated_files(names)  # fails early, with the reason, outside the instructor repository
    if not 0 <= args.min_score <= 1:
        raise UsageError(f"--min-score {args.min_score:g}: give a fraction between 0 and 1, e.g. 0.95")
    if args.only_mine and not args.mistakes:
        raise UsageError("--only-mine grades the tables of --mistakes DIR: give that folder too")
    ok = audit_labs(names, args.mistakes, args.min_score, jobs=max(1, args.jobs), quick=args.quick,
                    shipped=not args.only_mine, console=console, errors=errors)
    return 0 if ok else 1


def cmd_release(args) -> int:
    from grader.course import get_lab
    from grader.instructor.release import release, student_release

    for lab in args.labs:
        get_lab(lab)
    if args.student:
        out = student_release(args.student)
        console.print(f"student release written to {out}")
        return 0
    diffs = release(args.labs or None, check=args.check)
    if args.check:
        if diffs:
            console.print("".join(diffs), markup=False, highlight=False)
            errors.print("[red]labs/ is not what solutions/ generates:[/] run `litlabs release` and commit labs/")
            return 1
        console.print("labs/ is in sync with solutions/")
    else:
        console.print(f"labs/ regenerated ({len(diffs) or 'no'} changes)" if diffs else "labs/ regenerated")
    return 0


def cmd_gradescope(args) -> int:
    from grader.course import LABS
    from grader.instructor.gradescope import build_bundle

    out = build_bundle(args.out, args.lab or list(LABS))
    console.print(f"Gradescope autograder bundle written to {out}")
    return 0


def cmd_grade_all(args) -> int:
    from grader.instructor.grade_all import grade_all

    batch = grade_all(args.submissions, args.out, args.lab, jobs=args.jobs, force=args.force, console=console)
    return 1 if batch.grader_errors() else 0  # a grader error is never a grade: say so to scripts too


def cmd_validate(args) -> int:
    from grader.course import LABS, get_lab
    from grader.instructor.release import generated_files
    from grader.instructor.validate import print_verdicts, validate_lab
    from grader.judge.session import GradingSession

    names = args.labs or list(LABS)
    for name in names:
        get_lab(name)
    generated_files(names)  # fails early, with the reason, outside the instructor repository
    verdicts = []
    with GradingSession() as session:
        for name in names:
            verdicts += validate_lab(name, session)
    print_verdicts(verdicts, console)
    return 0 if all(v.ok for v in verdicts) else 1


def default_impl() -> str:
    from grader.course import REPO_ROOT

    return "solutions" if (REPO_ROOT / "solutions").is_dir() else "labs"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="litlabs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_grade(sub)
    _add_instructor(sub)
    return parser


def _reported_errors() -> tuple[type[Exception], ...]:
    """The exceptions that are the user's to fix: reported in one line, exit code 2."""
    from datamodules import DataError
    from grader.course import LabError
    from grader.judge.intake import IntakeError

    kinds = (UsageError, LabError, DataError, IntakeError)
    if not _has_instructor_wing():  # a student release
        return kinds
    from grader.instructor.release import ReleaseError

    return (*kinds, ReleaseError)


def main(argv=None) -> int:
    reported = _reported_errors()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except reported as err:
        errors.print(f"[red]error:[/] {err}", highlight=False)
        return 2
    except KeyboardInterrupt:  # what was finished is kept (grade-all writes its gradebook first)
        errors.print("[red]interrupted[/]", highlight=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())
