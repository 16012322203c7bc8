#!/usr/bin/env bash
# run-all.sh: one whole confab node in the foreground (what `make run-all` runs).
#
# Starts a private redis-server (unless REDIS_ADDR is set), BROKERS broker
# shards and GATEWAY_WORKERS gateway processes on PORT, restarts any of them
# that dies, prints the URL once /healthz answers 200, and on Ctrl-C, SIGTERM
# or a hang-up stops everything and exits 0 (2 when a part cannot run with its
# settings, which it does not restart). One node per RUN_DIR. Settings come
# from the environment and ./.env (see README.md). Two instances with different PORT and RUN_DIR and the same
# REDIS_ADDR are two nodes of one cluster.
set -uo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
GATEWAY="$BUILD_DIR/gateway/confab-gateway"
BROKER="$BUILD_DIR/broker/confab-broker"
for bin in "$GATEWAY" "$BROKER"; do
  [[ -x $bin ]] || { echo "run-all: $bin is missing; run 'make' first" >&2; exit 1; }
done

say() { printf 'run-all: %s\n' "$*" >&2; }

# Was a variable set by the user (environment or the .env file)?
envfile=${CONFAB_ENV_FILE:-.env}
user_set() {
  [[ -n ${!1+x} ]] || { [[ -f $envfile ]] && grep -Eq "^[[:space:]]*(export[[:space:]]+)?$1=" "$envfile"; }
}
user_redis=0
user_set REDIS_ADDR && user_redis=1

# The effective settings, as the daemons themselves read them (env, then .env).
if ! config=$("$GATEWAY" --check-config); then
  exit 2
fi
while IFS='=' read -r key value; do
  case $key in
    PORT | LISTEN_ADDR | RUN_DIR | BROKERS | GATEWAY_WORKERS | REDIS_ADDR) printf -v "$key" '%s' "$value" ;;
  esac
done <<<"$config"

mkdir -p "$RUN_DIR" && chmod 0750 "$RUN_DIR" || { say "cannot create RUN_DIR=$RUN_DIR"; exit 1; }
RUN_DIR=$(cd "$RUN_DIR" && pwd)
export RUN_DIR BROKERS GATEWAY_WORKERS PORT
# One node per RUN_DIR: a second one would put its Redis on the first one's
# socket (and remove it when stopping) and link its gateways to the first
# one's brokers. The lock goes when this script does, however it ends.
exec 9>"$RUN_DIR/run-all.lock"
if ! flock -n 9; then
  say "RUN_DIR=$RUN_DIR is in use by another run-all; give this node its own:"
  say "PORT=$((PORT + 1)) RUN_DIR=$RUN_DIR-2 make run-all"
  exit 1
fi

host=${LISTEN_ADDR:-127.0.0.1}
[[ $host == "::" || $host == "0.0.0.0" ]] && host=127.0.0.1
# A port held is most likely another run-all: its gateways would answer our
# health check, and ours would refuse the port. The daemons check their
# ports as they will bind them (any address, IPv6 too), before we start any.
"$GATEWAY" --check-ports && "$BROKER" --check-ports
case $? in
  0) ;;
  1)
    say "a port of this node is already in use (the line above names it; another make run-all?);"
    say "stop it, or run this node beside it: PORT=$((PORT + 1)) RUN_DIR=$RUN_DIR-2 make run-all"
    say "(with METRICS_PORT or BROKER_METRICS_PORT set, other ones of those too)"
    exit 1
    ;;
  *) exit 2 ;; # a setting to change: the line above says which
esac

if ! user_set JWT_SECRET; then
  say "################################################################"
  say "JWT_SECRET is not set: using the DEVELOPMENT secret."
  say "Anyone can forge tokens. Never expose this node to a network."
  say "################################################################"
  export CONFAB_DEV=1
fi

pids=()
stopping=0

# supervise NAME CMD...: run CMD, restarting it with backoff when it dies;
# its subshell ends with status 2 when CMD cannot run with these settings.
supervise() {
  local name=$1
  shift
  (
    child=0
    exec 9>&- # the RUN_DIR lock stays with the script alone
    trap 'stopping=1; ((child > 0)) && kill -TERM "$child" 2>/dev/null' TERM INT HUP
    delay=1
    while ((!stopping)); do
      started=$SECONDS
      "$@" &
      child=$!
      wait "$child"
      rc=$?
      while kill -0 "$child" 2>/dev/null; do wait "$child"; done # interrupted by a signal
      child=0 # reaped: its pid may be another process's by now
      ((stopping)) && break
      if ((rc == 2)); then
        # the daemons' status for a setting to change (the line above says
        # which): a restart would fail the same way
        say "$name cannot run with these settings (status 2); not restarting it"
        exit 2
      fi
      if ((rc == 0 || rc == 3)); then
        # A daemon exits 0 only when told to stop: by hand, or by a Ctrl-C
        # this shell could not trap (a background job of a non-interactive
        # shell ignores SIGINT, and an ignored signal cannot be trapped).
        # Restarting it would undo that. Status 3: stopped so, but a worker
        # had to be killed (common/supervisor.h): its log says which.
        say "$name stopped (status $rc); not restarting it"
        break
      fi
      ((SECONDS - started > 10)) && delay=1
      say "$name exited with status $rc; restarting in ${delay}s"
      sleep "$delay" & wait $! || true
      delay=$((delay * 2 > 16 ? 16 : delay * 2))
    done
  ) &
  pids+=($!)
}

# stop [STATUS]: stops every part, then exits with STATUS (0).
stop() {
  trap '' INT TERM HUP
  say "stopping"
  kill -TERM "${pids[@]}" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null
  say "stopped"
  exit "${1:-0}"
}
# HUP: the terminal went (an ssh session dropped); the daemons ignore it, and
# would run on holding the ports
trap stop INT TERM HUP

if ((!user_redis)); then
  command -v redis-server >/dev/null || { say "redis-server is not installed (make deps)"; exit 1; }
  REDIS_ADDR="unix:$RUN_DIR/redis.sock"
  supervise redis redis-server --port 0 --unixsocket "$RUN_DIR/redis.sock" --unixsocketperm 700 \
    --save '' --appendonly no --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log"
  say "private Redis at $REDIS_ADDR (log: $RUN_DIR/redis.log)"
fi
export REDIS_ADDR

supervise brokers "$BROKER" --shards "$BROKERS"
supervise gateways "$GATEWAY"

healthy() (
  exec 3<>"/dev/tcp/$host/$PORT" || exit 1
  printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
  read -r -t 2 status <&3 || exit 1
  [[ $status == *" 200 "* ]]
) 2>/dev/null

# A part that stopped for good: its pid, or nothing while every part runs.
stopped_part() {
  local p
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "$p"; return; }; done
}

deadline=$((SECONDS + 30))
until healthy; do
  [[ -n $(stopped_part) ]] && break # it said why; waiting on would not help
  if ((SECONDS > deadline)); then
    say "not healthy after 30 s: see the log lines above (is Redis reachable at $REDIS_ADDR?)"
    break
  fi
  sleep 0.2
done
down=$(stopped_part)
if [[ -z $down ]]; then
  healthy && say "confab is up: http://localhost:$PORT/  (Ctrl-C to stop)"
  say "another node of this cluster: PORT=$((PORT + 1)) RUN_DIR=$RUN_DIR-2 REDIS_ADDR=$REDIS_ADDR make run-all"
  # Until a signal stops us, or a part stops for good (above): then the rest.
  wait -n "${pids[@]}" 2>/dev/null
  part=$?
else
  wait "$down" # its status is kept until waited for
  part=$?
fi
say "a part of confab stopped; stopping the rest"
stop $((part == 2 ? 2 : 0))
