#!/usr/bin/env bash
# The version is the same everywhere it is written (scripts/check_versions.py): the control file,
# META.json, debian/changelog, CHANGELOG.md and the SQL upgrade chain. Each is then changed alone
# in a copy and the check must fail. Speaks TAP.
cd "$(dirname "$0")/../.."
source test/scripts/lib/tap.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "1..7"
out=$(python3 scripts/check_versions.py .)
is "$?" "0" "the control file, META.json, debian/changelog, CHANGELOG.md and sql/ agree ($out)"

copy() { rm -rf "$work/t" && mkdir -p "$work/t/debian" && cp -r thrillmon.control META.json CHANGELOG.md sql "$work/t/" && cp debian/changelog "$work/t/debian/"; }
refused() { # NAME COMMAND (run in the copy)
	copy
	(cd "$work/t" && eval "$2")
	out=$(python3 scripts/check_versions.py "$work/t"); rc=$?
	like "$rc $out" "^1 " "the check fails when $1"
	[ $rc = 1 ] || echo "# $out"
}
refused "META.json says another version" "sed -i 's/\"version\": \"[0-9.]*\"/\"version\": \"9.9.9\"/' META.json"
refused "the control file says another version" "sed -i \"s/^default_version = .*/default_version = '9.9.9'/\" thrillmon.control"
refused "debian/changelog has a newer entry" "sed -i '1i thrillmon (9.9.9-1) unstable; urgency=medium\n\n  * x\n\n -- x <x@x.x>  Wed, 02 Dec 2026 07:00:00 +0000\n' debian/changelog"
refused "CHANGELOG.md has a newer release" "sed -i '0,/^## /s//## 9.9.9 — in the making\n\n## /' CHANGELOG.md"
refused "the upgrade chain goes past the release" "touch sql/thrillmon--\$(sed -n \"s/^default_version = '\\(.*\\)'/\\1/p\" thrillmon.control)--9.9.9.sql"
refused "a release of CHANGELOG.md has no debian/changelog entry" "sed -i '/^thrillmon (0.3.0-1)/,/^ -- /d' debian/changelog"
exit $((fails > 0))
