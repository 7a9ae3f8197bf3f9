#!/usr/bin/env bash
# make deb: builds the Debian package postgresql-NN-thrillmon (debian/, pg_buildext) with
# dpkg-buildpackage -us -uc -b, in a copy of the tree, and puts what it made (.deb, .ddeb,
# .buildinfo, .changes) in a folder of its own (build/deb/ unless --out says otherwise).
#   scripts/deb.sh [--ref REF] [--out DIR]
# Without --ref the copy is the working tree as git sees it (tracked and new files, not ignored
# ones, so no build output goes in). With --ref it is that commit (a release tag, say). A release
# made before debian/ existed is packaged with today's debian/, its changelog cut to that release:
# how the package upgrade test gets the previous release's .deb. Unprivileged: only the
# dependencies (scripts/deps.sh) need root or sudo, and only when some are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ref=
out=$ROOT/build/deb
while [ $# -gt 0 ]; do
	case $1 in
	--ref) ref=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) echo "usage: $0 [--ref REF] [--out DIR]" >&2; exit 2 ;;
	esac
done
bash scripts/deps.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
control_version() { sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" "$1"; }

if [ -n "$ref" ]; then
	git rev-parse -q --verify "$ref^{commit}" >/dev/null || { echo "thrillmon: no commit '$ref' in this repository" >&2; exit 1; }
	version=$(git show "$ref:thrillmon.control" | sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p")
	src=$tmp/thrillmon-$version
	mkdir -p "$src"
	git archive "$ref" | tar -x -C "$src"
	if [ ! -d "$src/debian" ]; then
		cp -r debian "$src/"
		# The changelog as it stood at that release: from its entry down.
		awk -v v="$version" '$0 ~ "^thrillmon \\(" v "-" {f = 1} f' debian/changelog > "$src/debian/changelog"
		[ -s "$src/debian/changelog" ] || { echo "thrillmon: debian/changelog has no entry for $version" >&2; exit 1; }
	fi
else
	version=$(control_version thrillmon.control)
	src=$tmp/thrillmon-$version
	mkdir -p "$src"
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		# (--ignore-failed-read: a tracked file deleted in the working tree is simply left out.)
		git ls-files -z -co --exclude-standard | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -x -C "$src"
	else # an unpacked release (the PGXN zip, say): all of it, then without what a build left
		tar --exclude=./build -cf - . | tar -x -C "$src"
		make -C "$src" -s clean PG_CONFIG="${PG_CONFIG:-pg_config}" >/dev/null
	fi
fi

# The package's version must be the extension's (test/scripts/versions.sh checks the tree too).
deb_version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
if [ "${deb_version%-*}" != "$version" ]; then
	echo "thrillmon: debian/changelog is at $deb_version but thrillmon.control at $version" >&2
	exit 1
fi

mkdir -p "$out"
echo "thrillmon: building postgresql-NN-thrillmon $deb_version (log: $out/build-$deb_version.log)"
(
	cd "$src"
	pg_buildext updatecontrol # debian/control from control.in, for the versions this machine supports
	dpkg-buildpackage -us -uc -b -j"$(nproc)"
) > "$out/build-$deb_version.log" 2>&1 || { tail -40 "$out/build-$deb_version.log" >&2; echo "thrillmon: the package build failed" >&2; exit 1; }
for f in "$tmp"/*.deb "$tmp"/*.ddeb "$tmp"/*.buildinfo "$tmp"/*.changes; do
	[ -e "$f" ] || continue
	mv "$f" "$out/"
	echo "  $out/$(basename "$f")"
done
