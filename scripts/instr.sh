#!/bin/bash
# Instructions per message of one confab process (or Redis) in the steady
# scenario's shape, counted by callgrind: unlike a latency or a CPU time,
# the count is the same run after run on a noisy machine, so a change to the
# per-message path can be measured in one run (docs/benchmarks.md).
#
#   scripts/instr.sh [--build DIR] [--rate N] [--window S] [--top N] gateway|broker|redis
#
# One Redis, one broker (shard 0 of 1) and one gateway worker on a private
# run directory; the chosen one runs under valgrind. confab-bench holds 5000
# connections in 500 rooms of 10 and sends N msg/s (default 200: valgrind
# slows its process ~50x). Once messages flow, the counts are zeroed, and
# after S seconds (default 8) dumped; messages are counted by the gateway's
# confab_gateway_messages_in_total. Prints the instructions per message and
# the functions that take the most, inclusive.
set -euo pipefail

build=build rate=200 window=8 top=30
while [ $# -gt 1 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --top) top=$2; shift 2 ;;
    *) break ;;
    esac
done
who=${1:-}
case "$who" in gateway | broker | redis) ;; *)
    echo "usage: $0 [--build DIR] [--rate N] [--window S] [--top N] gateway|broker|redis" >&2
    exit 2 ;;
esac
for tool in valgrind callgrind_control callgrind_annotate redis-server curl; do
    command -v $tool >/dev/null || { echo "instr.sh: $tool is missing (apt-get install valgrind redis-server curl)" >&2; exit 2; }
done
build=$(cd "$build" && pwd)
secret=$(grep '^SECRET' "$(dirname "$0")/bench.py" | cut -d'"' -f2)
run=$(mktemp -d /tmp/confab-instr.XXXXXX)
chmod 750 "$run"
port=$((20000 + RANDOM % 20000))
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$run"
}
trap cleanup EXIT

export CONFAB_ENV_FILE=/dev/null RUN_DIR=$run PORT=$port LISTEN_ADDR=127.0.0.1 BROKERS=1 \
    GATEWAY_WORKERS=1 REDIS_ADDR=unix:$run/redis.sock JWT_SECRET=$secret LOG_LEVEL=warn \
    RATE_MSGS=0 LOGIN_RATE=0 UPGRADE_RATE=0 MAX_CONNS_PER_IP=0 MAX_PENDING_REQUESTS=1024
vg() { # the chosen process runs under callgrind
    if [ "$1" = "$who" ]; then
        echo valgrind --tool=callgrind --callgrind-out-file="$run/cg.%p"
    fi
}
# shellcheck disable=SC2046
$(vg redis) redis-server --port 0 --unixsocket "$run/redis.sock" --unixsocketperm 700 \
    --save '' --appendonly no --dir "$run" >"$run/log" 2>&1 &
pids+=($!)
# shellcheck disable=SC2046
$(vg broker) "$build/broker/confab-broker" --shard 0 --shards 1 >>"$run/log" 2>&1 &
pids+=($!)
# shellcheck disable=SC2046
$(vg gateway) "$build/gateway/confab-gateway" >>"$run/log" 2>&1 &
pids+=($!)
target=${pids[0]}
[ "$who" = broker ] && target=${pids[1]}
[ "$who" = gateway ] && target=${pids[2]}

for _ in $(seq 300); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break
    sleep 0.2
done
curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" || { echo "instr.sh: confab did not come up; log:" >&2; cat "$run/log" >&2; exit 1; }

count() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^confab_gateway_messages_in_total[{ ]/{print int($NF)}'; }
"$build/bench/gen/confab-bench" --url "ws://127.0.0.1:$port/ws" --secret "$secret" --conns 5000 \
    --rooms 500 --publishers 0 --rate "$rate" --step-seconds $((window + 60)) --drain-seconds 1 \
    >"$run/gen.log" 2>&1 &
gen=$!
pids+=("$gen")
for _ in $(seq 600); do # connecting 5000 takes a while when the gateway is under valgrind
    [ "$(count)" -gt $((rate * 2)) ] 2>/dev/null && break
    sleep 0.2
done
callgrind_control -z "$target" >/dev/null 2>&1
m0=$(count)
sleep "$window"
callgrind_control -d "$target" >/dev/null 2>&1
m1=$(count)
kill "$gen" 2>/dev/null || true
out=$(ls "$run"/cg.*.1)
total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",", "", $1); print $1}')
msgs=$((m1 - m0))
[ "$msgs" -gt 0 ] || { echo "instr.sh: no messages in the window; log:" >&2; cat "$run/log" "$run/gen.log" >&2; exit 1; }
echo "$who: $total instructions for $msgs messages: $((total / msgs)) per message"
callgrind_annotate --inclusive=yes "$out" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | sed -n "2,$((top + 1))p"
