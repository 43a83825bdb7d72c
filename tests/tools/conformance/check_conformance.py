#!/usr/bin/env python3
"""Runs plexus-conformance as CI does and judges the run.

  check_conformance.py --expect pass --json FILE -- plexus-conformance ARGS...
  check_conformance.py --expect PLX-P-8 -- plexus-conformance ARGS...

--expect pass: exit status 0, a final "N passed, 0 failed" line, and (with
--json) a report that parses and agrees with that line. --expect REQ: a
non-zero exit status and a FAIL line that names [REQ]: a fixture plugin
that breaks REQ must be caught, and for that reason. Either way the run must
end by itself (the kit kills hung ranks) and leave no process behind.
"""
import argparse
import json
import re
import subprocess
import sys

TOTALS = re.compile(r"^(\d+) passed, (\d+) failed$")


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
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"]
    if args.json:
        command += ["--json", args.json]
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=args.timeout)
    sys.stdout.write(proc.stdout)
    lines = [l for l in proc.stdout.splitlines() if l.strip()]
    if args.expect == "pass":
        problem = judge_pass(proc, lines, args.json)
    else:
        problem = judge_fail(proc, lines, args.expect)
    if problem:
        print(f"check_conformance: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
