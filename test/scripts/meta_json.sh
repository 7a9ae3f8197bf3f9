#!/usr/bin/env bash
# META.json follows the PGXN Meta Spec 2.0.0 (required keys and their shapes) and agrees with
# the control file. Speaks TAP.
cd "$(dirname "$0")/../.."
python3 - <<'PY'
import json, re
tests = []
def check(cond, name): tests.append((bool(cond), name))
meta = json.load(open("META.json"))
control = open("thrillmon.control").read()
version = re.search(r"default_version\s*=\s*'([^']+)'", control).group(1)
for key in ("name", "abstract", "maintainer", "license", "provides", "meta-spec", "version"):
    check(key in meta, f"META.json has required key {key}")
check(meta.get("meta-spec", {}).get("version") == "2.0.0", "meta-spec version is 2.0.0")
check(re.fullmatch(r"\d+\.\d+\.\d+", meta.get("version", "")), "version is semantic")
check(meta.get("version") == version, "version matches the control file's default_version")
check(meta.get("provides", {}).get("thrillmon", {}).get("version") == version, "provides.thrillmon.version matches")
check(all("file" in v and "version" in v for v in meta.get("provides", {}).values()), "each provided extension names its file and version")
check(meta.get("license") in ("postgresql", "mit", "bsd", "apache_2_0", "gpl_3", "restricted"), "license is a PGXN license name")
print(f"1..{len(tests)}")
for i, (ok, name) in enumerate(tests, 1):
    print(("ok" if ok else "not ok"), i, "-", name)
raise SystemExit(0 if all(ok for ok, _ in tests) else 1)
PY
