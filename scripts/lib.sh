# The preamble every entry script shares (make demo, test, bench, bench-nodiscard, nab): source it,
# then call `prepare`, which goes to the top of the tree, installs the dependencies
# (scripts/deps.sh) and builds and installs thrillmon. Also defines what they share: ROOT,
# PG_CONFIG and PG_BINDIR (on PATH), SUDO, VIRTUALENV_OPTS.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

# Every throw-away cluster preloads thrillmon (its GUCs and, later, its worker) and pg_cron.
VIRTUALENV_OPTS=(-t -o "shared_preload_libraries=thrillmon,pg_cron" -o "cron.database_name=postgres"
	-o "log_min_messages=warning" -o "max_locks_per_transaction=256")

build_and_install() {
	make -C "$ROOT" -s -j"$(nproc)" WERROR=1 PG_CONFIG="$PG_CONFIG"
	"${SUDO[@]}" make -C "$ROOT" -s install PG_CONFIG="$PG_CONFIG" >/dev/null
}

# cd to the tree, install what is missing, build and install; non-zero if any of it failed.
prepare() {
	cd "$ROOT" || return 1
	bash scripts/deps.sh || return 1
	# pg_config exists only once postgresql-server-dev-15 is installed (by deps.sh).
	PG_BINDIR=$("$PG_CONFIG" --bindir) || return 1
	export PATH="$PG_BINDIR:$PATH"
	build_and_install
}
