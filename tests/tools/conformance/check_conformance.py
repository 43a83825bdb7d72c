#!/usr/bin/env python3
"""Runs plexus-conformance as CI does and judges the run.

  check_conformance.py --expect pass --json FILE -- plexus-conformance ARGS...
  check_conformance.py --expect PLX-P-8 -- plexus-conformance ARGS...
  check_conformance.py --expect skip -- plexus-conformance ARGS...

--expect pass: exit status 0, a final "N passed, 0 failed" line, and (with
--json) a report that parses and agrees with that line; a backend that
declines the machine (exit status 77, "skipped: ..." and "0 passed, 0
failed") makes this script exit 77 too, which meson counts as a skip (a GPU
backend on a machine without a GPU), and so does a machine with fewer GPUs
than the ranks asked for (the kit refuses to start, exit status 2). --expect REQ: a non-zero exit status
and a FAIL line that names [REQ]: a fixture plugin that breaks REQ must be
caught, and for that reason. --expect skip: the run must be such a skip.
Either way the run must end by itself (the kit kills hung ranks) and leave
no process behind. --expect-line REGEX (repeatable): some line of the
report must match each (a note, say).
"""
import argparse
import json
import re
import subprocess
import sys

TOTALS = re.compile(r"^(\d+) passed, (\d+) failed$")
EXIT_SKIP = 77


def is_skip(proc, lines):
    return (proc.returncode == EXIT_SKIP and any(l.startswith("skipped: ") for l in lines)
            and bool(lines) and lines[-1] == "0 passed, 0 failed")


def too_few_gpus(proc):
    """The kit's refusal to put two ranks on one GPU, or None."""
    found = re.search(r"^plexus-conformance: (\d+ ranks but \d+ visible GPUs?:.*)$", proc.stderr or "", re.M)
    return found.group(1) if proc.returncode == 2 and found else None


def judge_skip(proc, lines):
    if not is_skip(proc, lines):
        return (f"expected a skip (exit status 77, a 'skipped: ' line, '0 passed, 0 failed'), "
                f"got exit status {proc.returncode}")
    return None


def judge_pass(proc, lines, json_path):
    totals = TOTALS.match(lines[-1]) if lines else None
    if proc.returncode != 0 or not totals or totals.group(2) != "0":
        return f"expected a clean pass, got exit status {proc.returncode}"
    if json_path:
        with open(json_path) as f:
            report = json.load(f)
        if report["failed"] != 0 or report["passed"] != int(totals.group(1)):
            return f"the JSON report says {report['passed']} passed, {report['failed']} failed"
    return None


def judge_fail(proc, lines, requirement):
    if proc.returncode == 0:
        return f"expected a failure naming [{requirement}], but the run passed"
    named = [l for l in lines if l.startswith("FAIL") and f"[{requirement}]" in l]
    if not named:
        return f"exit status {proc.returncode}, but no FAIL line names [{requirement}]"
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--expect", required=True, help="'pass' or the requirement that must fail")
    parser.add_argument("--json", help="also write and check this JSON report")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--expect-line", action="append", default=[], help="a regex some report line must match")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"]
    if args.json:
        command += ["--json", args.json]
    # errors='replace': a failing plugin may print bytes that are not UTF-8,
    # and its report must still be shown, never a traceback instead.
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors='replace', timeout=args.timeout)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    lines = [l for l in proc.stdout.splitlines() if l.strip()]
    if args.expect == "pass" and is_skip(proc, lines):
        return EXIT_SKIP
    if args.expect == "pass" and too_few_gpus(proc):
        print(f"check_conformance: skipped: {too_few_gpus(proc)}", file=sys.stderr)
        return EXIT_SKIP
    if args.expect == "skip":
        problem = judge_skip(proc, lines)
    elif args.expect == "pass":
        problem = judge_pass(proc, lines, args.json)
    else:
        problem = judge_fail(proc, lines, args.expect)
    missing = [r for r in args.expect_line if not any(re.search(r, l) for l in lines)]
    if not problem and missing:
        problem = f"no line of the report matches {missing[0]!r}"
    if problem:
        print(f"check_conformance: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
