#!/usr/bin/env bash
# soak.sh: run confab under mixed traffic with periodic faults and report
# lost / duplicated / out-of-order messages, unanswered sends, latency and
# the RSS of every process over time (what `make soak` runs; docs/soak.md).
#
#   scripts/soak.sh --duration 10m [--clients N] [--rooms R] [--rate MSGS_PER_S]
#                   [--faults on|off] [--fault-every SECONDS] [--seed N] [--out DIR]
#
# Starts, in a temporary directory, a private redis-server (Unix socket) and
# two nodes sharing it on free loopback ports: per node two broker shards
# and one gateway process, CONFAB_DEV=1. Each process runs under a small
# supervisor that restarts it when it dies and writes its pid to
# pids/<name>.pid (the faults kill processes; the soak follows the pids).
# Then build/tools/soak/confab-soak drives the traffic. Results (summary,
# CSV time series, the soak's log and every process log) go to --out
# (default $BUILD_DIR/soak-<time>). Exit status: confab-soak's (0 clean,
# 1 problems found, 2 bad usage or the cluster did not come up).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
BUILD_DIR=${BUILD_DIR:-build}
GATEWAY="$BUILD_DIR/gateway/confab-gateway"
BROKER="$BUILD_DIR/broker/confab-broker"
SOAK="$BUILD_DIR/tools/soak/confab-soak"

say() { printf 'soak: %s\n' "$*" >&2; }
usage() {
  sed -n '5,7p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

duration=10m clients=200 rooms=20 rate=100 faults=on fault_every=30 seed="" out=""
while (($#)); do
  case $1 in
    --duration) duration=${2:-} ;;
    --clients) clients=${2:-} ;;
    --rooms) rooms=${2:-} ;;
    --rate) rate=${2:-} ;;
    --faults) faults=${2:-} ;;
    --fault-every) fault_every=${2:-} ;;
    --seed) seed=${2:-} ;;
    --out) out=${2:-} ;;
    -h | --help) usage ;;
    *) say "unknown option $1"; usage ;;
  esac
  (($# >= 2)) || usage
  shift 2
done

# 90s, 10m, 1h or plain seconds
case $duration in
  *h) seconds=$((${duration%h} * 3600)) ;;
  *m) seconds=$((${duration%m} * 60)) ;;
  *s) seconds=${duration%s} ;;
  *) seconds=$duration ;;
esac 2>/dev/null
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { say "bad --duration $duration"; exit 2; }
[[ $faults == on || $faults == off ]] || { say "--faults is on or off"; exit 2; }

for bin in "$GATEWAY" "$BROKER" "$SOAK"; do
  [[ -x $bin ]] || { say "$bin is missing; build first (make, or cmake --build $BUILD_DIR)"; exit 2; }
done
command -v redis-server >/dev/null || { say "redis-server is not installed (make deps)"; exit 2; }
GATEWAY=$(realpath "$GATEWAY") BROKER=$(realpath "$BROKER") SOAK=$(realpath "$SOAK")

out=${out:-$BUILD_DIR/soak-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs" || exit 2
out=$(realpath "$out")
dir=$(mktemp -d /tmp/confab-soak.XXXXXX) || exit 2
mkdir -p "$dir/pids" "$dir/node-a" "$dir/node-b"
chmod 0750 "$dir/node-a" "$dir/node-b"

pids=()
cleanup() {
  trap '' INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  # a Redis left stopped by an interrupted fault would never see the TERM
  [[ -f $dir/pids/redis.pid ]] && kill -CONT "$(cat "$dir/pids/redis.pid")" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null
  rm -rf "$dir"
}
trap 'cleanup; exit 130' INT TERM

# supervise NAME CMD...: run CMD (log: logs/NAME.log, pid: pids/NAME.pid),
# restarting it when it dies: after 0.5 s, doubling up to 8 s while it keeps
# dying within 10 s of starting.
supervise() {
  local name=$1
  shift
  (
    child=0 stopping=0
    trap 'stopping=1; ((child)) && kill -TERM "$child" 2>/dev/null' TERM
    delay=0.5
    while ((!stopping)); do
      started=$SECONDS
      "$@" >>"$out/logs/$name.log" 2>&1 &
      child=$!
      echo "$child" >"$dir/pids/$name.pid"
      wait "$child"
      rc=$?
      while kill -0 "$child" 2>/dev/null; do wait "$child"; done
      ((stopping)) && break
      printf '%s soak: %s exited with status %s; restarting\n' "$(date +%T)" "$name" "$rc" \
        >>"$out/logs/$name.log"
      if ((SECONDS - started > 10)); then delay=0.5; fi
      sleep "$delay" & wait $! || true
      delay=$(awk -v d="$delay" 'BEGIN { d *= 2; print (d > 8 ? 8 : d) }')
    done
  ) 2>>"$out/logs/supervisor.log" & # bash's "Killed" notices go there
  pids+=($!)
}

port_a=$("$SOAK" --free-port) && port_b=$("$SOAK" --free-port) || exit 2
while [[ $port_b == "$port_a" ]]; do port_b=$("$SOAK" --free-port); done

export CONFAB_DEV=1 LISTEN_ADDR=127.0.0.1 BROKERS=2 GATEWAY_WORKERS=1 JWT_TTL=86400 \
  LOG_LEVEL=${LOG_LEVEL:-warn} REDIS_ADDR="unix:$dir/redis.sock" CONFAB_ENV_FILE=/dev/null
# Every simulated user comes from 127.0.0.1: the per-address limits meant for
# real clients would refuse most logins and reconnects, so they are off. The
# per-connection RATE_MSGS keeps its default (no client here exceeds it).
export LOGIN_RATE=0 UPGRADE_RATE=0 MAX_CONNS_PER_IP=0
unset JWT_SECRET METRICS_PORT BROKER_METRICS_PORT LOG_FORMAT NOTIFY_SOCKET WATCHDOG_USEC \
  LISTEN_FDS LISTEN_PID JOURNAL_STREAM REDIS_USERNAME REDIS_PASSWORD METRICS_ADDR

# Job control: every supervisor gets a process group of its own, so a Ctrl-C
# reaches only the soak in the foreground (which then stops the traffic and
# still reports) and the cluster stays up until cleanup stops it.
set -m
supervise redis redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 \
  --save '' --appendonly no --dir "$dir"
for node in a b; do
  port=$port_a
  [[ $node == b ]] && port=$port_b
  for shard in 0 1; do
    RUN_DIR=$dir/node-$node PORT=$port supervise "broker-$node$shard" \
      "$BROKER" --shard $shard --shards 2
  done
  RUN_DIR=$dir/node-$node PORT=$port supervise "gateway-$node" "$GATEWAY"
done

healthy() (
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
  read -r -t 2 status <&3 || exit 1
  [[ $status == *" 200 "* ]]
) 2>/dev/null

deadline=$((SECONDS + 30))
until healthy "$port_a" && healthy "$port_b"; do
  if ((SECONDS > deadline)); then
    say "the cluster is not ready after 30 s; logs in $out/logs"
    cleanup
    exit 2
  fi
  sleep 0.2
done
say "cluster ready: gateways on 127.0.0.1:$port_a and :$port_b, Redis at $REDIS_ADDR"
say "running $duration: $clients clients, $rooms rooms, $rate msg/s, faults $faults; results in $out"

args=(--ports "$port_a,$port_b" --pids "$dir/pids" --duration "$seconds" --clients "$clients"
  --rooms "$rooms" --rate "$rate" --faults "$faults" --fault-every "$fault_every"
  --csv "$out/series.csv")
[[ -n $seed ]] && args+=(--seed "$seed")
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  # shellcheck disable=SC1091
  echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo)," \
    "$(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -r)"
  echo "tree: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- gateway broker common 2>/dev/null || echo ' (+ uncommitted server changes)'), binaries: $BUILD_DIR"
  echo "command: scripts/soak.sh --duration $duration --clients $clients --rooms $rooms --rate $rate --faults $faults --fault-every $fault_every"
} >"$out/summary.txt"

trap '' INT
"$SOAK" "${args[@]}" 2> >(tee "$out/soak.log" >&2) | tee -a "$out/summary.txt"
rc=${PIPESTATUS[0]}
cleanup
say "summary: $out/summary.txt, time series: $out/series.csv, logs: $out/logs/"
exit "$rc"
