# Shared by the scripts: build and install the extension with the right privileges.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG
PG_BINDIR=$("$PG_CONFIG" --bindir)
export PATH="$PG_BINDIR:$PATH"

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

# Every throw-away cluster preloads thrillmon (its GUCs and, later, its worker) and pg_cron.
VIRTUALENV_OPTS=(-t -o "shared_preload_libraries=thrillmon,pg_cron" -o "cron.database_name=postgres"
	-o "log_min_messages=warning" -o "max_locks_per_transaction=256")

build_and_install() {
	make -C "$ROOT" -s -j"$(nproc)" WERROR=1 PG_CONFIG="$PG_CONFIG"
	"${SUDO[@]}" make -C "$ROOT" -s install PG_CONFIG="$PG_CONFIG" >/dev/null
}
