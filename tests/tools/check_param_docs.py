#!/usr/bin/env python3
"""The user guide's environment-variable tables against what the code declares.

Every parameter that the loader and the plugins declare (plexus-info --json:
name and default) must have a row in docs/user-guide.md, and the row's
default must be the declared one. A table that drifted from the code misleads
every user who tunes by it, and nothing else would notice.

Rows look like  | `PLEXUS_X_Y` | default | meaning |  or, for a family,
| `PLEXUS_X_A`, `_B`, `_C` | `a`, b, c | meaning |  (a name starting with
'_' continues the first name's plugin prefix).

Also, with PLUGINS_DIR: every parameter a loaded plugin's sources read
(param_get and the plugins' *_param helpers with a literal name, or the
name in a std::pair table) must be declared, so plexus-info lists it.

Usage: check_param_docs.py PLEXUS_INFO USER_GUIDE [PLUGINS_DIR]
"""
import json
import pathlib
import re
import subprocess
import sys

ROW = re.compile(r"^\|\s*(`PLEXUS_[A-Z0-9_]+`(?:\s*,\s*`_[A-Z0-9_]+`)*)\s*\|\s*([^|]*)\|")


READ = re.compile(r'\w*param\w*\(\s*([^,()]+?)\s*,\s*"([A-Z][A-Z0-9_]*)"|std::pair\{\s*"([A-Z][A-Z0-9_]*)"')


def declared(plexus_info):
    """{name: default} of the loader's and every plugin's parameters, and
    the names of the plugins plexus-info loaded."""
    out = subprocess.run([plexus_info, "--json"], check=True, capture_output=True, text=True).stdout
    info = json.loads(out)["plugins"]
    params = {p["name"]: p["default"] for p in info["loader_params"]}
    for plugin in info["plugins"]:
        params.update({p["name"]: p["default"] for p in plugin.get("params", [])})
    return params, {plugin["name"] for plugin in info["plugins"]}


def read_in_sources(plugins_dir, loaded):
    """{variable: file} of what each loaded plugin's sources read."""
    reads = {}
    for folder in sorted(pathlib.Path(plugins_dir).iterdir()):
        if not folder.is_dir() or folder.name not in loaded:
            continue
        prefix = "PLEXUS_" + folder.name.upper().replace("-", "_") + "_"
        for source in sorted(folder.glob("*.[ch]pp")):
            for m in READ.finditer(source.read_text(encoding="utf-8")):
                name = m.group(2) or m.group(3)
                reads.setdefault(("PLEXUS_" if m.group(1) == "nullptr" else prefix) + name, str(source))
    return reads


def expand(first, suffix, known):
    """PLEXUS_PINNED_HOST_STAGE_BYTES + _STAGES -> PLEXUS_PINNED_HOST_STAGES."""
    parts = first.split("_")
    for cut in range(len(parts) - 1, 0, -1):
        name = "_".join(parts[:cut]) + suffix
        if name in known:
            return name
    return first.rsplit("_", 1)[0] + suffix


def cell_value(text):
    """`0` (ask the launcher) -> 0; 16 -> 16."""
    text = text.strip()
    if text.startswith("`"):
        return text[1:].split("`", 1)[0]
    return text


def documented(guide, known):
    """{name: default as written} of every table row naming a variable."""
    rows = {}
    for line in open(guide, encoding="utf-8"):
        m = ROW.match(line)
        if not m:
            continue
        names = [n.strip().strip("`") for n in m.group(1).split(",")]
        names = [names[0]] + [expand(names[0], n, known) for n in names[1:]]
        defaults = [cell_value(d) for d in m.group(2).split(",")]
        if len(defaults) != len(names):
            defaults = [cell_value(m.group(2))] * len(names)
        rows.update(zip(names, defaults))
    return rows


def main():
    plexus_info, guide = sys.argv[1], sys.argv[2]
    known, loaded = declared(plexus_info)
    rows = documented(guide, known)
    problems = []
    if len(sys.argv) > 3:
        for name, source in sorted(read_in_sources(sys.argv[3], loaded).items()):
            if name not in known:
                problems.append(f"{name} is read by {source} but not declared (plexus-info does not list it)")
    for name, default in sorted(known.items()):
        if name not in rows:
            problems.append(f"{name} (default {default!r}) has no row in {guide}")
        elif default and rows[name] != default:  # an empty default may be described in words
            problems.append(f"{name}: the guide says default {rows[name]!r}, the code declares {default!r}")
    for p in problems:
        print("FAIL", p)
    print(f"{len(known)} declared parameters, {len(rows)} rows, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
