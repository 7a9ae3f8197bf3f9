#!/usr/bin/env bash
# make dist: the PGXN distribution thrillmon-<version>.zip, the repository at a commit (HEAD, or
# DIST_REF, a release tag) under one top directory thrillmon-<version>/, as PGXN Manager takes it.
# Refuses to make one whose META.json is not valid PGXN metadata or whose versions disagree.
#   scripts/dist.sh [--ref REF] [--out DIR]      (default: HEAD, the top of the tree)
set -euo pipefail
cd "$(dirname "$0")/.."
ref=HEAD
out=.
while [ $# -gt 0 ]; do
	case $1 in
	--ref) ref=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) echo "usage: $0 [--ref REF] [--out DIR]" >&2; exit 2 ;;
	esac
done
git rev-parse -q --verify "$ref^{commit}" >/dev/null || { echo "thrillmon: no commit '$ref' in this repository" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Check what goes into the zip, not the working tree.
git archive "$ref" | tar -x -C "$tmp"
python3 scripts/pgxn_meta.py "$tmp/META.json" >&2 || { echo "thrillmon: META.json at $ref is not valid PGXN metadata" >&2; exit 1; }
python3 scripts/check_versions.py "$tmp" >/dev/null || { python3 scripts/check_versions.py "$tmp" >&2; exit 1; }
version=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" "$tmp/thrillmon.control")
if [ "$ref" = HEAD ] && [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	echo "thrillmon: note: the zip holds HEAD, not the uncommitted changes of this working tree" >&2
fi
mkdir -p "$out"
zip=$out/thrillmon-$version.zip
git archive --format=zip --prefix="thrillmon-$version/" -o "$zip" "$ref"
echo "$zip"
