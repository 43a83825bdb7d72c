#!/usr/bin/env python3
"""Sums meson testlog.json files into the one line CI reads:
"N passed, M failed[, K skipped]". A log that is missing counts nothing (a
stage that never ran its tests reports its own failure); a line that is not
JSON counts as a failure. Exits 1 when a test failed or when no test passed."""
import json
import sys

KIND = {"OK": "passed", "EXPECTEDFAIL": "passed", "SKIP": "skipped",
        "FAIL": "failed", "TIMEOUT": "failed", "ERROR": "failed", "UNEXPECTEDPASS": "failed"}


def count(paths):
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for path in paths:
        try:
            with open(path) as log:
                for line in log:
                    if line.strip():
                        try:
                            result = json.loads(line).get("result")
                        except ValueError:  # a torn line: two runs wrote one log
                            result = None
                        counts[KIND.get(result, "failed")] += 1
        except FileNotFoundError:
            pass
    return counts


def main():
    counts = count(sys.argv[1:])
    line = f"{counts['passed']} passed, {counts['failed']} failed"
    if counts["skipped"]:
        line += f", {counts['skipped']} skipped"
    print(line)
    return 0 if counts["failed"] == 0 and counts["passed"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
