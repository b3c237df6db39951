#!/usr/bin/env bash
# Makes sure a PostgreSQL server runs on loopback for the store's tests and prints its URL
# (use it as KUBEPLAN_TEST_POSTGRES). Installs Debian's postgresql package when it is missing
# and this runs as root; where no server can run, prints nothing and says why on stderr, and
# the PostgreSQL tests skip saying so. The server keeps running for later test runs;
# `hack/postgres.sh stop` stops it.
set -uo pipefail

port="${KUBEPLAN_PG_PORT:-54329}"
data="${TMPDIR:-/tmp}/kubeplan-postgres-$(id -u)-$port"
url="postgres://kubeplan@127.0.0.1:$port/postgres?sslmode=disable"
log() { echo "postgres: $*" >&2; }

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
bin="$(bindir)"
# PostgreSQL refuses to run as root: root runs it as the package's postgres user.
as=()
if [[ $(id -u) == 0 ]]; then
  as=(runuser -u postgres --)
fi
# `hack/postgres.sh stop` stops the server (CI does, so that no process outlives its run).
if [[ "${1:-}" == stop ]]; then
  if [[ -n "$bin" && -f "$data/postmaster.pid" ]]; then
    "${as[@]}" "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  fi
  exit 0
fi
if [[ -z "$bin" && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  log "installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -q --no-install-recommends postgresql ||
    { apt-get update -q && apt-get install -y -q --no-install-recommends postgresql; }; } >/dev/null 2>&1
  bin="$(bindir)"
fi
if [[ -z "$bin" ]]; then
  log "no PostgreSQL server here and none could be installed: the PostgreSQL store tests skip"
  exit 0
fi

if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
  echo "$url"
  exit 0
fi
if [[ ! -f "$data/PG_VERSION" ]]; then
  rm -rf "$data" && mkdir -p "$data"
  [[ $(id -u) == 0 ]] && chown postgres: "$data"
  if ! "${as[@]}" "$bin/initdb" -D "$data" -U kubeplan --auth=trust -E UTF8 >"$data.initdb.log" 2>&1; then
    log "initdb failed (the PostgreSQL store tests skip):"; cat "$data.initdb.log" >&2
    exit 0
  fi
fi
# Throwaway test data: durability off for speed.
if ! "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start \
  -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null; then
  log "the server did not start (the PostgreSQL store tests skip):"; tail -n 20 "$data/server.log" >&2
  exit 0
fi
echo "$url"
