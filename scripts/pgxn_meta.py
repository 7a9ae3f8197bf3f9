#!/usr/bin/env python3
"""Validates a META.json against the PGXN Meta Spec 1.0.0 (pgxn.org/spec, "RFC 1, Standard"):
the keys PGXN Manager and pgxnclient read. Standard library only.

    python3 scripts/pgxn_meta.py [META.json]    prints each violation; exit 1 if any

Written from the spec's prose: required keys, the type of every known key (Term, Tag, SemVer,
Version Range, URI, Path, License String), the prereqs phases and relationships, resources,
release_status, and custom keys only as x_/X_.
"""
import json
import re
import sys

LICENSES = {
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd", "freebsd", "gfdl_1_2",
    "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1",
    "openssl", "perl_5", "postgresql", "qpl_1_0", "ssleay", "sun", "zlib", "open_source", "restricted",
    "unrestricted", "unknown",
}
PHASES = {"configure", "build", "test", "runtime", "develop"}
RELATIONS = {"requires", "recommends", "suggests", "conflicts"}
REQUIRED = ["name", "abstract", "version", "maintainer", "license", "provides", "meta-spec"]
OPTIONAL = ["description", "generated_by", "tags", "no_index", "prereqs", "release_status", "resources"]
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z]+)?")
VERSION_CLAUSE = re.compile(r"\s*((==|!=|>=|<=|>|<)\s*)?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z]+)?\s*")
URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def validate(meta):
    errors = []
    err = errors.append
    if not isinstance(meta, dict):
        return ["the document is not a JSON object"]

    def custom(key):
        return key.startswith(("x_", "X_"))

    def term(value, where):
        if not isinstance(value, str) or len(value) < 2 or re.search(r"[/\\\s\x00-\x1f\x7f]", value):
            err(f"{where}: a Term (2+ characters, no slash, backslash, space or control character), got {value!r}")

    def tag(value, where):
        if not isinstance(value, str) or not 1 <= len(value) <= 255 or re.search(r"[/\\\x00-\x1f\x7f]", value):
            err(f"{where}: a Tag (1-255 characters, no slash, backslash or control character), got {value!r}")

    def semver(value, where):
        if not isinstance(value, str) or not SEMVER.fullmatch(value):
            err(f"{where}: a semantic version (major.minor.patch), got {value!r}")

    def version_range(value, where):
        if value == 0 or value == "0":
            return
        if not isinstance(value, str) or not all(VERSION_CLAUSE.fullmatch(c) for c in value.split(",")):
            err(f"{where}: a version range (0, a version, or comparisons joined by commas), got {value!r}")

    def uri(value, where):
        if not isinstance(value, str) or not URI.fullmatch(value):
            err(f"{where}: a URI, got {value!r}")

    def path(value, where):
        if not isinstance(value, str) or not value or value.startswith("/") or "\\" in value or ".." in value.split("/"):
            err(f"{where}: a relative path with forward slashes, got {value!r}")

    def string(value, where):
        if not isinstance(value, str) or not value.strip():
            err(f"{where}: a non-empty string, got {value!r}")

    def strings(value, where):
        if isinstance(value, str):
            string(value, where)
        elif isinstance(value, list) and value:
            for i, v in enumerate(value):
                string(v, f"{where}[{i}]")
        else:
            err(f"{where}: a string or a non-empty list of strings")

    def known_keys(obj, allowed, where):
        for key in obj:
            if key not in allowed and not custom(key):
                err(f"{where}: unknown key {key!r} (custom keys start with x_ or X_)")

    for key in REQUIRED:
        if key not in meta:
            err(f"missing required key {key!r}")
    known_keys(meta, REQUIRED + OPTIONAL, "META.json")

    if "name" in meta:
        term(meta["name"], "name")
    if "version" in meta:
        semver(meta["version"], "version")
    for key in ("abstract", "description", "generated_by"):
        if key in meta:
            string(meta[key], key)
    if "maintainer" in meta:
        strings(meta["maintainer"], "maintainer")

    lic = meta.get("license")
    if "license" in meta:
        if isinstance(lic, str):
            lic = [lic]
        if isinstance(lic, list) and lic:
            for v in lic:
                if v not in LICENSES:
                    err(f"license: {v!r} is not a license string of the spec")
        elif isinstance(lic, dict) and lic:
            for name, url in lic.items():
                string(name, "license name")
                uri(url, f"license[{name!r}]")
        else:
            err("license: a license string, a list of them, or a map of names to URLs")

    provides = meta.get("provides")
    if "provides" in meta:
        if not isinstance(provides, dict) or not provides:
            err("provides: a non-empty map of extension names")
        else:
            for ext, spec in provides.items():
                term(ext, f"provides key {ext!r}")
                if not isinstance(spec, dict):
                    err(f"provides.{ext}: a map")
                    continue
                for key in ("file", "version"):
                    if key not in spec:
                        err(f"provides.{ext}: missing required key {key!r}")
                known_keys(spec, ["file", "version", "abstract", "docfile"], f"provides.{ext}")
                if "file" in spec:
                    path(spec["file"], f"provides.{ext}.file")
                if "docfile" in spec:
                    path(spec["docfile"], f"provides.{ext}.docfile")
                if "version" in spec:
                    semver(spec["version"], f"provides.{ext}.version")
                if "abstract" in spec:
                    string(spec["abstract"], f"provides.{ext}.abstract")

    ms = meta.get("meta-spec")
    if "meta-spec" in meta:
        if not isinstance(ms, dict) or "version" not in ms:
            err("meta-spec: a map with a version")
        else:
            if ms["version"] != "1.0.0":
                err(f"meta-spec.version: this validator knows 1.0.0, got {ms['version']!r}")
            known_keys(ms, ["version", "url"], "meta-spec")
            if "url" in ms:
                uri(ms["url"], "meta-spec.url")

    if "tags" in meta:
        if not isinstance(meta["tags"], list) or not meta["tags"]:
            err("tags: a non-empty list")
        else:
            for i, t in enumerate(meta["tags"]):
                tag(t, f"tags[{i}]")

    if "no_index" in meta:
        ni = meta["no_index"]
        if not isinstance(ni, dict):
            err("no_index: a map")
        else:
            known_keys(ni, ["file", "directory"], "no_index")
            for key, v in ni.items():
                if not custom(key):
                    for p in (v if isinstance(v, list) else [v]):
                        path(p, f"no_index.{key}")

    if "prereqs" in meta:
        pr = meta["prereqs"]
        if not isinstance(pr, dict):
            err("prereqs: a map of phases")
        else:
            for phase, rels in pr.items():
                if custom(phase):
                    continue
                if phase not in PHASES:
                    err(f"prereqs: unknown phase {phase!r}")
                    continue
                if not isinstance(rels, dict):
                    err(f"prereqs.{phase}: a map of relationships")
                    continue
                for rel, deps in rels.items():
                    if custom(rel):
                        continue
                    if rel not in RELATIONS:
                        err(f"prereqs.{phase}: unknown relationship {rel!r}")
                        continue
                    if not isinstance(deps, dict):
                        err(f"prereqs.{phase}.{rel}: a map of names to version ranges")
                        continue
                    for dep, rng in deps.items():
                        term(dep, f"prereqs.{phase}.{rel} key {dep!r}")
                        version_range(rng, f"prereqs.{phase}.{rel}.{dep}")

    if "release_status" in meta and meta["release_status"] not in ("stable", "testing", "unstable"):
        err(f"release_status: stable, testing or unstable, got {meta['release_status']!r}")

    if "resources" in meta:
        res = meta["resources"]
        if not isinstance(res, dict):
            err("resources: a map")
        else:
            known_keys(res, ["homepage", "bugtracker", "repository"], "resources")
            if "homepage" in res:
                uri(res["homepage"], "resources.homepage")
            bt = res.get("bugtracker")
            if "bugtracker" in res:
                if not isinstance(bt, dict) or not any(k in bt for k in ("web", "mailto")):
                    err("resources.bugtracker: a map with web and/or mailto")
                else:
                    known_keys(bt, ["web", "mailto"], "resources.bugtracker")
                    if "web" in bt:
                        uri(bt["web"], "resources.bugtracker.web")
                    if "mailto" in bt and not (isinstance(bt["mailto"], str) and EMAIL.fullmatch(bt["mailto"])):
                        err(f"resources.bugtracker.mailto: an email address, got {bt['mailto']!r}")
            repo = res.get("repository")
            if "repository" in res:
                if not isinstance(repo, dict) or not any(k in repo for k in ("url", "web")):
                    err("resources.repository: a map with url and/or web")
                else:
                    known_keys(repo, ["url", "web", "type"], "resources.repository")
                    for k in ("url", "web"):
                        if k in repo:
                            uri(repo[k], f"resources.repository.{k}")
                    if "type" in repo:
                        term(repo["type"], "resources.repository.type")
    return errors


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "META.json"
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        print(f"{path}: {e}")
        return 1
    errors = validate(meta)
    for e in errors:
        print(f"{path}: {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
