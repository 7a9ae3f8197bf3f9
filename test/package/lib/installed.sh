# Sourced by the package tests (test/package/*.sh), after test/scripts/lib/cluster.sh. They put
# thrillmon into the server's own directories the way a user would (apt-get install ./….deb,
# pgxn install), so they first move aside the files an earlier `make install` of this tree put
# there, and put them back when they end however they end: "nothing left behind" is then
# measured against a server without thrillmon, and the tree's own installation survives.
# Defines: SUDO server_files stash_installed restore_installed previous_release_ref export_tree.

if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif sudo -n true 2>/dev/null; then SUDO=(sudo -n); else
	echo "1..0 # SKIP installing packages needs root or password-less sudo"
	exit 0
fi
PKGLIBDIR=$(${PG_CONFIG:-pg_config} --pkglibdir)
SHAREDIR=$(${PG_CONFIG:-pg_config} --sharedir)

# Every thrillmon file in the server's directories: the library, its bitcode, control and scripts.
server_files() {
	find "$PKGLIBDIR" "$PKGLIBDIR/bitcode" "$SHAREDIR/extension" -maxdepth 1 -name 'thrillmon*' 2>/dev/null | sort
}

stash=$work/stash
stash_installed() {
	if dpkg-query -W -f='${db:Status-Status}' "postgresql-*-thrillmon" 2>/dev/null | grep -q installed; then
		echo "Bail out! a postgresql-NN-thrillmon package is installed on this machine; remove it first"
		exit 1
	fi
	mkdir -p "$stash"
	server_files > "$stash/list"
	while read -r f; do
		mkdir -p "$stash$(dirname "$f")"
		"${SUDO[@]}" mv "$f" "$stash$f"
	done < "$stash/list"
}
restore_installed() {
	[ -f "$stash/list" ] || return 0
	while read -r f; do
		[ -e "$stash$f" ] && "${SUDO[@]}" rm -rf "$f" && "${SUDO[@]}" mv "$stash$f" "$f"
	done < "$stash/list"
	rm -f "$stash/list"
}

# The commit of the release before the current one: its tag (v0.6.0) where tags exist, else the
# last commit whose thrillmon.control still named that version (a clone without tags).
previous_release() {
	local current
	current=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" thrillmon.control)
	ls sql/thrillmon--*--"$current".sql | sed -n 's|sql/thrillmon--\([0-9.]*\)--.*|\1|p' | sort -V | tail -1
}
previous_release_ref() {
	local v=$1 moved
	if git rev-parse -q --verify "refs/tags/v$v^{commit}" >/dev/null; then echo "v$v"; return; fi
	moved=$(git log -1 --format=%H -G"^default_version = '$v'" -- thrillmon.control)
	[ -n "$moved" ] && git show "$moved^:thrillmon.control" 2>/dev/null | grep -q "^default_version = '$v'" && echo "$moved^"
}

# export_tree DIR: the source as git sees it (tracked and new files, nothing ignored: no build
# output), as a user would have it from a release.
export_tree() {
	mkdir -p "$1"
	git ls-files -z -co --exclude-standard | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -x -C "$1"
}
