#!/usr/bin/env bash
# The chat peer of `onair bench chat --peer-url`: actionhero 29 (npm) with redis-server (apt),
# both on loopback, one chat room. Speaks the protocol onair's chat speaks (roomAdd, say,
# broadcasts as `context: user`), so the bench runs unchanged against it.
#
#   bench/peers/actionhero/run.sh start   # installs if needed, starts both, prints the URL
#   bench/peers/actionhero/run.sh stop    # stops what `start` started (by pid)
#
# Settings (environment): PEER_PORT (18080), PEER_REDIS_PORT (16379),
# PEER_ROOM (chatroomSystem-chatroom-bench), PEER_DIR (bench/peers/actionhero/work).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
dir="${PEER_DIR:-$here/work}"
port="${PEER_PORT:-18080}"
redis_port="${PEER_REDIS_PORT:-16379}"
room="${PEER_ROOM:-chatroomSystem-chatroom-bench}"
version="29.3.5"

stop() {
  for name in actionhero redis; do
    if [[ -f "$dir/$name.pid" ]]; then
      pid="$(cat "$dir/$name.pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$dir/$name.pid"
      echo "stopped $name ($pid)"
    fi
  done
}

install() {
  if ! command -v redis-server >/dev/null; then
    echo "installing redis-server" >&2
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  fi
  command -v node >/dev/null || { echo "node is needed (apt-get install nodejs npm)" >&2; exit 1; }
  mkdir -p "$dir/dist/config" "$dir/public" "$dir/log" "$dir/pids"
  if [[ ! -f "$dir/node_modules/actionhero/package.json" ]] ||
     ! grep -q "\"version\": \"$version\"" "$dir/node_modules/actionhero/package.json"; then
    echo "installing actionhero $version" >&2
    (cd "$dir" && { [[ -f package.json ]] || npm init -y >/dev/null; } &&
      npm install --no-audit --no-fund --silent "actionhero@$version" >/dev/null)
  fi
  # A minimal actionhero project in plain JS: the starting room, loopback, no per-message logs.
  cat > "$dir/dist/config/project.js" <<'JS'
exports.DEFAULT = {
  general: () => ({
    serverToken: "onair-bench-peer",
    startingChatRooms: { [process.env.PEER_ROOM]: {} },
  }),
  web: () => ({ port: process.env.PORT, bindIP: "127.0.0.1" }),
};
JS
  # actionhero 29 wants a routes file in the project.
  echo 'exports.DEFAULT = { routes: () => ({ get: [{ path: "/status", action: "status" }] }) };' \
    > "$dir/dist/config/routes.js"
  cat > "$dir/dist/server.js" <<'JS'
const { Process } = require("actionhero");
const app = new Process();
app.registerProcessSignals((code) => process.exit(code));
app.start();
JS
}

wait_port() {
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1; see $dir/*.log" >&2
  exit 1
}

start() {
  install
  stop >/dev/null
  redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
    > "$dir/redis.log" 2>&1 &
  echo $! > "$dir/redis.pid"
  wait_port "$redis_port"
  (cd "$dir" && PORT="$port" PEER_ROOM="$room" REDIS_PORT="$redis_port" LOG_LEVEL=warning \
    NODE_ENV=production exec node dist/server.js > "$dir/actionhero.log" 2>&1) &
  echo $! > "$dir/actionhero.pid"
  wait_port "$port"
  echo "actionhero $version on http://127.0.0.1:$port, room $room"
  echo "pids: node $(cat "$dir/actionhero.pid"), redis-server $(cat "$dir/redis.pid")"
  echo "run: onair bench chat --peer-url http://127.0.0.1:$port --peer-room $room" \
    "--peer-pid $(cat "$dir/actionhero.pid") --peer-pid $(cat "$dir/redis.pid") ..."
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
