#!/usr/bin/env python3
"""tools.plexus_info: plexus-info --json is one valid JSON object with the
documented keys, and --params lists the loader's parameters."""
import json
import subprocess
import sys

KEYS = ("version", "plugins", "load_report", "load_error", "host_topology", "backend_topology")


def run(exe, *args):
    done = subprocess.run([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True, timeout=120)
    if done.returncode != 0:
        sys.exit(f"plexus-info {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def check_json(exe):
    text = run(exe, "--json")
    # The same validation a user would run: python3 -m json.tool.
    subprocess.run([sys.executable, "-m", "json.tool"], input=text, text=True, check=True,
                   stdout=subprocess.DEVNULL)
    doc = json.loads(text)
    missing = [k for k in KEYS if k not in doc]
    if missing:
        sys.exit(f"plexus-info --json lacks {missing}")
    if doc["load_report"] is None and doc["load_error"] is None:
        sys.exit("plexus-info --json has neither a load report nor a load error")


def check_params(exe):
    text = run(exe, "--params")
    if "PLEXUS_TIMEOUT_MS" not in text:
        sys.exit(f"plexus-info --params does not list PLEXUS_TIMEOUT_MS:\n{text}")


def check_bad_flag(exe):
    done = subprocess.run([exe, "--no-such-flag"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    if done.returncode != 2 or "usage:" not in done.stderr:
        sys.exit(f"an unknown flag gave exit {done.returncode}, stderr:\n{done.stderr}")


if __name__ == "__main__":
    check_json(sys.argv[1])
    check_params(sys.argv[1])
    check_bad_flag(sys.argv[1])
    print("plexus-info: --json valid, --params complete, bad flags rejected")
