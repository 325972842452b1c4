# Sourced by client/demo.sh and client/pgbench-compare.sh:
#
#   source client/throwaway.sh NAME PORT
#
# installs what is missing (Debian 12), builds and installs the extension and
# coupon-stress, starts a throwaway server in /tmp/coupon-NAME.XXXXXX as the
# postgres user (coupon preloaded, 600 connections), stops and removes it when
# the calling script exits, and points libpq (PGHOST, PGPORT, PGUSER,
# PGDATABASE) at it.  Sets $src to the top of the tree.  Steps are announced
# on stderr.
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
step() { printf '\n==> %s\n' "$*" >&2; }

step "checking the packages this needs (postgresql-15, its development files, libpq)"
bash "$src/.ci/deps"

step "building and installing the coupon extension and coupon-stress"
make -s -C "$src" >/dev/null
make -s -C "$src" install >/dev/null

throwaway_dir=$(mktemp -d "/tmp/coupon-$1.XXXXXX")
chmod 755 "$throwaway_dir"
trap 'step "stopping the server"; bash "$src/.ci/pgserver" stop "$throwaway_dir"; rm -rf "$throwaway_dir"' EXIT
step "starting a throwaway server in $throwaway_dir (coupon preloaded, 600 connections)"
bash "$src/.ci/pgserver" start "$throwaway_dir" "$2"
export PGHOST=$throwaway_dir/socket PGPORT=$2 PGUSER=postgres PGDATABASE=postgres
