#!/usr/bin/env bash
# make bench-nodiscard: bench/retention.sh (B1, B3, B4, B5) with the cluster on an ext4 file system
# mounted with default options, i.e. without online `discard`. Debian installs mount ext4 that way
# and trim weekly with fstrim.timer; the machines this project is measured on mount their root
# with `discard`, which makes every truncate() of a dropped partition's files wait for the disk
# to discard the freed blocks (see bench/README.md, B3). The file system is a loop-mounted
# sparse image under /var/tmp, made and removed here (needs root, or sudo).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
prepare
img=$(mktemp /var/tmp/thrillmon-bench-fs.XXXXXX)
mnt=$(mktemp -d /tmp/thrillmon-bench-fs.XXXXXX)
cleanup() {
	"${SUDO[@]}" umount "$mnt" 2>/dev/null || true
	rm -f "$img"
	rmdir "$mnt" 2>/dev/null || true
}
trap cleanup EXIT
truncate -s "${BENCH_FS_SIZE:-24G}" "$img" # sparse: only what the benchmark writes takes space
"${SUDO[@]}" mkfs.ext4 -q -F "$img"
"${SUDO[@]}" mount -o loop "$img" "$mnt"
"${SUDO[@]}" mkdir "$mnt/pg"
"${SUDO[@]}" chown postgres:postgres "$mnt/pg"
echo "== bench/retention.sh on $(findmnt -n -o FSTYPE,OPTIONS "$mnt") (root file system: $(findmnt -n -o FSTYPE,OPTIONS /))"
pg_virtualenv "${VIRTUALENV_OPTS[@]}" -c "-d $mnt/pg/regress" -o "fsync=on" -o "max_wal_size=4GB" bash bench/retention.sh
