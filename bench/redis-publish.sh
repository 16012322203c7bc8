#!/bin/bash
# PUBLISH capacity of one Redis server on this machine, measured with
# redis-benchmark against a private redis-server (free port on 127.0.0.1, no
# persistence). The figures feed the capacity model in docs/scaling.md:
# every confab room message is one EVALSHA (id, history, PUBLISH) on the
# Redis server that owns the room, fanned out to one subscriber per broker.
#
# Rows: PUBLISH of a 100-byte payload with 0, 1 and 2 subscribed connections
# reading (redis-cli subscribe > /dev/null), without pipelining and with 16
# and 64 commands in flight per connection; then EVALSHA of a script that
# only publishes, and of one shaped like confab's send (HGET, HINCRBY, RPUSH,
# PUBLISH, an LTRIM every 13th), with 1 subscriber.
#
# Usage: bench/redis-publish.sh [-n REQUESTS] [-c CLIENTS]   (200000, 50)
# Prints a markdown table on stdout. Needs redis-server, redis-cli,
# redis-benchmark (Debian: redis-server, redis-tools) and python3.
set -euo pipefail

requests=200000
clients=50
while getopts n:c: opt; do
    case $opt in
    n) requests=$OPTARG ;;
    c) clients=$OPTARG ;;
    *) echo "usage: $0 [-n REQUESTS] [-c CLIENTS]" >&2; exit 1 ;;
    esac
done

for tool in redis-server redis-cli redis-benchmark python3; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cli=(redis-cli -h 127.0.0.1 -p "$port")
subs=()
redis_pid=

stop_subscribers() {
    for pid in "${subs[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${subs[@]}"; do wait "$pid" 2>/dev/null || true; done
    subs=()
}

cleanup() {
    stop_subscribers
    if [ -n "$redis_pid" ]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

# Polls "$@" until its output equals $want, for at most 10 s.
wait_for() {
    local want=$1 deadline=$((SECONDS + 10))
    shift
    until [ "$("$@" 2>/dev/null)" = "$want" ]; do
        if [ $SECONDS -ge $deadline ]; then
            echo "$0: timed out waiting for '$*' to print $want" >&2
            exit 1
        fi
        sleep 0.05
    done
}

numsub() {
    "${cli[@]}" pubsub numsub room:x | tail -n 1
}

# Starts subscribers until $1 connections are subscribed to room:x.
subscribers() {
    stop_subscribers
    wait_for 0 numsub
    for _ in $(seq 1 "$1"); do
        "${cli[@]}" subscribe room:x >/dev/null &
        subs+=($!)
    done
    wait_for "$1" numsub
}

redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" &
redis_pid=$!
wait_for PONG "${cli[@]}" ping

payload=$(printf 'x%.0s' $(seq 1 100))
sha_pub=$("${cli[@]}" script load "return redis.call('PUBLISH', ARGV[1], ARGV[2])")
# confab's send in its common case (broker/store.c): the TTLs are set once per
# HISTORY_TTL/8 per room and the list is trimmed once it is an eighth over
sha_send=$("${cli[@]}" script load "
local epoch = redis.call('HGET', KEYS[1], 'epoch') or 'e'
local id = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local p = ARGV[2] .. epoch .. id
if redis.call('RPUSH', KEYS[2], p) > 112 then redis.call('LTRIM', KEYS[2], -100, -1) end
redis.call('PUBLISH', ARGV[1], p)
return id")

# One table row: label, subscriber count, pipeline depth, then the command.
row() {
    local label=$1 nsubs=$2 pipeline=$3 csv note=""
    shift 3
    csv=$(redis-benchmark -h 127.0.0.1 -p "$port" -n "$requests" -c "$clients" \
        -P "$pipeline" --csv "$@" | tail -n 1)
    # "test","rps","avg","min","p50","p95","p99","max" (latencies in ms)
    IFS=, read -r _ rps _ _ p50 _ p99 _ <<<"${csv//\"/}"
    # Redis drops a subscriber over its output-buffer limit: say so, and start again.
    if [ "$(numsub)" != "$nsubs" ]; then
        note=" (a subscriber fell behind and was disconnected)"
        subscribers "$nsubs"
    fi
    printf '| %s | %d | %d | %.0f | %s | %s |%s\n' "$label" "$nsubs" "$pipeline" "$rps" \
        "$p50" "$p99" "$note"
}

echo "Redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'), $(nproc) cores," \
    "redis-benchmark -n $requests -c $clients, 100-byte payload"
echo
echo "| command | subscribers | pipeline | ops/s | p50 ms | p99 ms |"
echo "|---|---:|---:|---:|---:|---:|"
for n in 0 1 2; do
    subscribers "$n"
    for p in 1 16 64; do
        row "PUBLISH" "$n" "$p" PUBLISH room:x "$payload"
    done
done
subscribers 1
for p in 1 16 64; do
    row "EVALSHA (PUBLISH only)" 1 "$p" EVALSHA "$sha_pub" 0 room:x "$payload"
done
for p in 1 16 64; do
    row "EVALSHA (send-like)" 1 "$p" EVALSHA "$sha_send" 2 meta:x hist:x room:x "$payload"
done
