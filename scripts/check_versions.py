#!/usr/bin/env python3
"""The release's version, read from every place that states it, must agree:
thrillmon.control (default_version), META.json (version, provides.thrillmon.version),
debian/changelog (the newest entry's upstream version), CHANGELOG.md (the newest release heading)
and the SQL (the upgrade chain ends at it, and the install script built from sql/source/ is named
after it by the Makefile, from the control file). Also: every release CHANGELOG.md lists has a
debian/changelog entry, newest first in both.

    python3 scripts/check_versions.py [TREE]    prints each disagreement; exit 1 if any
"""
import json
import os
import re
import sys


def vkey(v):
    return tuple(int(x) for x in v.split("."))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    errors = []

    def read(name):
        with open(os.path.join(root, name), encoding="utf-8") as f:
            return f.read()

    found = {}
    m = re.search(r"^default_version\s*=\s*'([^']+)'", read("thrillmon.control"), re.M)
    found["thrillmon.control default_version"] = m.group(1) if m else None
    meta = json.loads(read("META.json"))
    found["META.json version"] = meta.get("version")
    found["META.json provides.thrillmon.version"] = meta.get("provides", {}).get("thrillmon", {}).get("version")
    deb = re.findall(r"^thrillmon \(([0-9.]+)-[^)]+\)", read("debian/changelog"), re.M)
    found["debian/changelog newest entry"] = deb[0] if deb else None
    changes = re.findall(r"^## ([0-9]+\.[0-9]+\.[0-9]+)\b", read("CHANGELOG.md"), re.M)
    found["CHANGELOG.md newest release"] = changes[0] if changes else None
    upgrades = [re.fullmatch(r"thrillmon--([0-9.]+)--([0-9.]+)\.sql", f) for f in os.listdir(os.path.join(root, "sql"))]
    targets = sorted((m.group(2) for m in upgrades if m), key=vkey)
    found["sql/ upgrade chain's end"] = targets[-1] if targets else None

    version = found["thrillmon.control default_version"]
    for where, v in found.items():
        if v != version:
            errors.append(f"{where} is {v}, thrillmon.control says {version}")
    if deb != sorted(deb, key=vkey, reverse=True) or len(set(deb)) != len(deb):
        errors.append(f"debian/changelog entries are not newest first, once each: {deb}")
    missing = [v for v in changes if v not in deb]
    if missing:
        errors.append(f"releases in CHANGELOG.md without a debian/changelog entry: {missing}")
    for e in errors:
        print(e)
    if not errors:
        print(f"all agree on {version}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
