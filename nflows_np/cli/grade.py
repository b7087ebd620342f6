"""The ``assign`` and ``grade`` commands of ``python -m nflows_np``.

``assign SOURCE -o DEST``
    Write the student version of a solution file (see :mod:`.markers`).
``grade SUBMISSION --assignment NAME [--json PATH] [--seed N] [--sandbox-user NAME] [--python PATH]``
    Grade a submission; ``grade --list`` prints the assignment names.
    ``--python`` is the interpreter the child processes run (default: the
    grader's own); with ``--sandbox-user`` it must be one that user can run,
    with numpy (e.g. ``/usr/bin/python3`` with Debian's ``python3-numpy``).

``grade-all SUBMISSIONS_DIR --assignment NAME [--out DIR] [--jobs N] ...``
    Grade a whole folder in parallel (see :mod:`nflows_np.grading.batch`).

``grade`` always writes ``--json PATH`` when given -- also when the submission
cannot be read, the arguments are wrong, or the grader itself fails (then with
score 0 and the error in ``output``).  Exit status: 0 graded (whatever the
score), 1 the grader failed, 2 bad arguments.
"""
from __future__ import annotations

import argparse
import os
import pwd
import secrets
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass

from nflows_np.cli.common import UsageError, parse_number
from nflows_np.grading import assignments, batch, isolation
from nflows_np.grading.cases import Assignment
from nflows_np.grading.markers import MarkerError, assign_file
from nflows_np.grading.report import format_text, gradescope_dict, write_json_atomic
from nflows_np.grading.runner import GradeResult, failed_result, grade_submission
from nflows_np.grading.submission import SUFFIXES


class GraderInterrupted(BaseException):
    """SIGTERM / SIGHUP / SIGINT during grading: stop, clean up, still write the JSON."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``assign`` and ``grade`` sub-commands."""
    assign = subparsers.add_parser(
        "assign", help="write the student version of a solution file",
        description="Replace each '# BEGIN SOLUTION' ... '# END SOLUTION' region by "
                    "'raise NotImplementedError(...)' and drop '# BEGIN HIDDEN TESTS' ... "
                    "'# END HIDDEN TESTS' blocks (.py or .ipynb).")
    assign.add_argument("source", help="solution file (.py or .ipynb)")
    assign.add_argument("-o", "--output", dest="dest", help="student file to write")
    assign.set_defaults(func=run_assign)

    grade = subparsers.add_parser(
        "grade", help="grade a submission in a sandbox",
        description="Grade a .py or .ipynb submission; each case runs in a fresh, "
                    "limited child process and is compared with the grader's reference.")
    grade.add_argument("submission", nargs="?", help="the submitted .py or .ipynb file")
    grade.add_argument("--assignment", help="assignment name (see --list)")
    grade.add_argument("--list", action="store_true", help="print the assignment names and exit")
    grade.add_argument("--json", metavar="PATH", help="write Gradescope's results.json here")
    grade.add_argument("--seed", help="seed of the case inputs (default: a secret random one)")
    grade.add_argument("--sandbox-user", metavar="NAME",
                       help="as root: the unprivileged user (name or uid) that runs the submission "
                            "(default: a fresh uid of its own for each grading)")
    grade.add_argument("--python", metavar="PATH",
                       help=f"interpreter (with numpy) that runs the submission (default: "
                            f"{ROOT_DEFAULT_PYTHON} as root, else the grader's own)")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="self-check of your own code without bubblewrap (refused as root)")
    grade.add_argument("--timeout", help="cap on each case's time limit, in seconds")
    grade.add_argument("--budget", help="time limit for the whole run, in seconds")
    grade.set_defaults(func=run_grade)

    batch = subparsers.add_parser(
        "grade-all", help="grade a folder of submissions in parallel",
        description="Grade every submission of a folder (files, or one folder per student as in "
                    "Gradescope's export) in parallel: one results.json per student, grades.csv, "
                    "summary.txt and histogram.png in --out.")
    batch.add_argument("submissions", help="folder of submissions")
    batch.add_argument("--assignment", required=True, help="assignment name (see grade --list)")
    batch.add_argument("--out", help="output folder (default: SUBMISSIONS-graded)")
    batch.add_argument("--jobs", help="gradings at once (default: the number of cores)")
    for option in ("--seed", "--sandbox-user", "--python", "--timeout", "--budget"):
        batch.add_argument(option, help=f"passed to every grade (see grade {option})")
    batch.set_defaults(func=run_grade_all)


def run_assign(args: argparse.Namespace) -> int:
    """``assign``: write the student version; bad markers are a one-line error."""
    if not args.dest:
        raise UsageError("assign: give the output file with -o DEST")
    if not os.path.isfile(args.source):
        raise UsageError(f"assign: no such file: {args.source}")
    try:
        assign_file(args.source, args.dest)
    except (MarkerError, ValueError) as exc:
        raise UsageError(f"assign: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"assign: {exc}") from None
    print(f"wrote {args.dest}")
    return 0


SANDBOX_UIDS = (2**30, 2**31 - 2)  # as root, each grading runs its cases as a fresh uid from here
ROOT_DEFAULT_PYTHON = "/usr/bin/python3"
_INSTALL = "apt-get install -y bubblewrap python3-numpy"


@dataclass(frozen=True)
class Mode:
    """How a grading runs the submission: isolated or not, as whom, with which interpreter."""

    isolated: bool
    user: tuple[int, int] | None
    python: str
    note: str


def _sandbox_identity(sandbox_user: str | None) -> tuple[tuple[int, int], str]:
    """(uid, gid) the submission runs as, and how the report names it.

    Default: a uid of its own for this grading, drawn at random from
    :data:`SANDBOX_UIDS` and owned by no account -- nothing else on the
    machine runs as it (so nothing else can signal or be signalled by it), and
    two gradings never share it.  Else a user name or a numeric uid.
    """
    if sandbox_user is None:
        while True:
            uid = SANDBOX_UIDS[0] + secrets.randbelow(SANDBOX_UIDS[1] - SANDBOX_UIDS[0])
            try:
                pwd.getpwuid(uid)
            except KeyError:
                return (uid, uid), f"uid {uid} (an identity of its own for this grading)"
    if sandbox_user.isdigit():
        uid = int(sandbox_user)
        if uid == 0:
            raise UsageError("grade: --sandbox-user must not be root")
        return (uid, uid), f"uid {uid}"
    try:
        entry = pwd.getpwnam(sandbox_user)
    except KeyError:
        raise UsageError(f"grade: no such user: {sandbox_user}") from None
    if entry.pw_uid == 0:
        raise UsageError("grade: --sandbox-user must not be root")
    return (entry.pw_uid, entry.pw_gid), f"{sandbox_user} (uid {entry.pw_uid})"


def _resolve_python(python: str) -> str:
    # A bare name (python3) is looked up on PATH; the child gets an absolute path.
    path = python if os.sep in python else (shutil.which(python) or python)
    path = os.path.abspath(path)
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise UsageError(f"grade: --python {python} is not an executable file")
    return path


def choose_mode(sandbox_user: str | None, python: str | None, no_sandbox: bool) -> Mode:
    """The grading mode for these options (see the module docstring); one-line UsageError if refused.

    As root: always the bubblewrap sandbox, the submission as ``sandbox_user``
    (default: a fresh uid, see :func:`_sandbox_identity`) with ``python``
    (default the system's ``/usr/bin/python3``).
    Otherwise: the sandbox as oneself where bubblewrap works, else a self-check.
    """
    bwrap = isolation.find_bwrap()
    if os.geteuid() == 0:
        if no_sandbox or bwrap is None:
            why = "--no-sandbox was given" if no_sandbox else "bubblewrap (bwrap) is not installed"
            raise UsageError(f"grade: refusing to run untrusted code as root without the sandbox "
                             f"({why}): {_INSTALL}, and grade without --no-sandbox")
        user, who = _sandbox_identity(sandbox_user)
        why = isolation.check_bwrap(bwrap, user)
        if why:
            raise UsageError(f"grade: bubblewrap cannot create the sandbox here ({why}); "
                             "user namespaces must be enabled")
        path = _resolve_python(python or ROOT_DEFAULT_PYTHON)
        try:
            isolation.probe_interpreter(path, user)
        except OSError:
            raise UsageError(f"grade: {who} cannot run {path} with numpy: {_INSTALL}, "
                             "or pass an interpreter it can run with --python") from None
        return Mode(True, user, path, f"mode: sandbox (bubblewrap); the submission runs as {who} with {path}")
    if sandbox_user is not None:
        raise UsageError("grade: --sandbox-user needs the grader to run as root")
    path = _resolve_python(python or sys.executable)
    why = "--no-sandbox was given" if no_sandbox else (
        "bubblewrap is not installed" if bwrap is None else isolation.check_bwrap(bwrap, None))
    if not why:
        try:
            isolation.probe_interpreter(path, None)
        except OSError as exc:
            raise UsageError(f"grade: {exc}") from None
        return Mode(True, None, path, f"mode: sandbox (bubblewrap); the submission runs as uid "
                                      f"{os.getuid()} with {path}")
    return Mode(False, None, path, f"mode: SELF-CHECK, not isolated ({why}): grade only your own "
                                   f"code this way; lecturers grade as root with bubblewrap")


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def _raise_interrupted(signum: int, frame: object) -> None:
    # Once: a second Ctrl-C must not interrupt the cleanup that the first one started.
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise GraderInterrupted(signal.Signals(signum).name)


def _write(path: str | None, result: GradeResult) -> bool:
    """Write ``results.json``; on failure try a minimal report, then say so on stderr."""
    if path is None:
        return True
    try:
        write_json_atomic(path, gradescope_dict(result))
        return True
    except Exception as exc:  # noqa: BLE001 - last resort: a minimal valid file
        error = exc
    try:
        write_json_atomic(path, gradescope_dict(failed_result(
            None, f"could not write the full report: {error!r}", result.assignment)))
    except Exception as exc:  # noqa: BLE001
        print(f"python -m nflows_np: error: cannot write {path}: {exc}", file=sys.stderr)
    return False


def _assignment_or_none(name: str | None) -> Assignment | None:
    try:
        return assignments.load(name or "")
    except Exception:  # noqa: BLE001 - only used to list the cases of a failed run
        return None


def _grade(args: argparse.Namespace) -> GradeResult:
    if args.submission is None:
        raise UsageError("grade: give the SUBMISSION file (or --list)")
    if args.assignment is None:
        raise UsageError("grade: give --assignment NAME (see --list)")
    try:
        assignment = assignments.load(args.assignment)
    except KeyError as exc:
        raise UsageError(f"grade: {exc.args[0]}") from None
    seed = None if args.seed is None else parse_number(args.seed, "grade: --seed", int, inclusive=True)
    timeout = None if args.timeout is None else parse_number(args.timeout, "grade: --timeout", float)
    budget = None if args.budget is None else parse_number(args.budget, "grade: --budget", float)
    if not os.path.isfile(args.submission):
        raise UsageError(f"grade: submission not found: {args.submission}")
    if not args.submission.endswith(SUFFIXES):
        raise UsageError(f"grade: the submission must be a .py or .ipynb file: {args.submission}")
    mode = choose_mode(args.sandbox_user, args.python, args.no_sandbox)
    result = grade_submission(args.submission, assignment, seed=seed, sandbox_user=mode.user,
                              timeout=timeout, budget=budget, python=mode.python,
                              isolated=mode.isolated)
    result.notes.insert(0, mode.note)
    return result


def run_grade_all(args: argparse.Namespace) -> int:
    """``grade-all``: grade a folder in parallel, write the CSV, summary and histogram."""
    if not os.path.isdir(args.submissions):
        raise UsageError(f"grade-all: not a folder: {args.submissions}")
    try:
        assignment = assignments.load(args.assignment)
    except KeyError as exc:
        raise UsageError(f"grade-all: {exc.args[0]}") from None
    jobs = os.cpu_count() or 1 if args.jobs is None else parse_number(args.jobs, "grade-all: --jobs", int)
    # Fail early, once, on options that every grading would refuse.
    choose_mode(args.sandbox_user, args.python, False)
    out = args.out or os.path.normpath(args.submissions) + "-graded"
    options = [value for option in ("seed", "sandbox_user", "python", "timeout", "budget")
               if getattr(args, option) is not None
               for value in (f"--{option.replace('_', '-')}", getattr(args, option))]
    start = time.monotonic()
    try:
        students = batch.grade_all(args.submissions, assignment, out, jobs, options)
    except KeyboardInterrupt:
        print("python -m nflows_np: grade-all interrupted: the gradings in progress were stopped; "
              f"what was graded is in {out}", file=sys.stderr)
        return 128 + int(signal.SIGINT)
    batch.write_csv(os.path.join(out, "grades.csv"), students, assignment)
    text = batch.summary(students, assignment)
    text += f"\ngraded {len(students)} submissions in {time.monotonic() - start:.1f} s ({jobs} at once)"
    with open(os.path.join(out, "summary.txt"), "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    batch.draw_histogram(os.path.join(out, "histogram.png"), students, assignment)
    print(text)
    print(f"wrote {os.path.join(out, 'grades.csv')}, summary.txt, histogram.png and one results.json "
          "per student")
    return 0


def run_grade(args: argparse.Namespace) -> int:
    """``grade``: grade, print the report, always write ``--json`` if given."""
    if args.list:
        for name in assignments.names():
            print(name)
        return 0
    # A grader stopped from outside still cleans up and writes its report.
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in _STOP_SIGNALS}
    try:
        try:
            result = _grade(args)
            status = 0
        except GraderInterrupted as exc:
            # The sandbox's context managers have killed every case process by now.
            result = failed_result(_assignment_or_none(args.assignment),
                                   f"grading interrupted by {exc}: not graded", args.assignment or "")
            result.interrupted = True
            _write(args.json, result)
            where = f"; {args.json} says so" if args.json else ""
            print(f"python -m nflows_np: grading interrupted by {exc}; its processes were killed{where}",
                  file=sys.stderr)
            return 128 + int(getattr(signal, str(exc)))
        except UsageError as exc:
            _write(args.json, failed_result(_assignment_or_none(args.assignment), str(exc),
                                            args.assignment or ""))
            raise
        except BaseException as exc:  # noqa: BLE001 - the grader itself failed: still report
            detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            result = failed_result(_assignment_or_none(args.assignment),
                                   f"internal grader error: {type(exc).__name__}: {exc}",
                                   args.assignment or "")
            print(detail, end="", file=sys.stderr)  # for the lecturer; not in results.json
            status = 1
        if not _write(args.json, result):
            status = 1
        print(format_text(result), end="")
        return status
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
