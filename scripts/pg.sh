#!/usr/bin/env bash
# Throwaway PostgreSQL on loopback for tests and the demo.
#   scripts/pg.sh start DIR   -> starts a server with its data under DIR, prints its URL
#   scripts/pg.sh stop DIR
# Runs as root (CI) through runuser, or as a normal user directly. Never the default port.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?data directory}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

case "$cmd" in
  start)
    mkdir -p "$dir"
    chmod 755 "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; fi
    port=$(free_port)
    as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null
    psql -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -qc 'CREATE DATABASE streamfleet' >/dev/null
    echo "postgresql://postgres@127.0.0.1:$port/streamfleet"
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
