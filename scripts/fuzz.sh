#!/usr/bin/env bash
# fuzz.sh: runs every libFuzzer harness of tests/fuzz (docs/fuzzing.md) for a
# while, each from a scratch copy of its seed corpus, and fails when any of
# them finds a crash, a leak, undefined behaviour or a timeout.
#   scripts/fuzz.sh [BUILD_DIR]     (default build-fuzz, built with -DCONFAB_FUZZ=ON)
# Environment:
#   FUZZ_SECONDS  seconds per harness (default 60)
#   FUZZ_TARGETS  harnesses to run (default: all, space-separated)
#   FUZZ_WORK     scratch directory (default: a new one under /tmp, kept when
#                 something was found so the reproducer stays there)
# `make fuzz` builds the harnesses and calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${1:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
BIN="$BUILD_DIR/tests/fuzz"
CORPUS=tests/fuzz/corpus

# name:max_len. Lengths are a little over what each input can usefully be:
# a client frame, a /login body, a token (AUTH_MAX_TOKEN + the mode byte), a
# stream of several broker frames, a room name plus an event payload, a stream
# of client WebSocket frames, the first bytes of a connection, a token's payload
# (claims.h's CLAIMS_TEXT_MAX), a stream of Redis replies.
ALL=(fuzz_client_json:4096 fuzz_client_msgpack:4096 fuzz_wire:65536 fuzz_login:1024
     fuzz_jwt:4200 fuzz_event:16384 fuzz_wsframe:16384 fuzz_upgreq:4200 fuzz_claims:3100
     fuzz_rreply:65536)
read -r -a WANT <<<"${FUZZ_TARGETS:-}"

WORK=${FUZZ_WORK:-$(mktemp -d /tmp/confab-fuzz.XXXXXX)}
mkdir -p "$WORK"
# Leaks are failures (libFuzzer's -detect_leaks needs LSan on); UB stops the
# run with a stack trace like a crash does.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

passed=0
failed=0
for entry in "${ALL[@]}"; do
  name=${entry%%:*}
  max_len=${entry#*:}
  if ((${#WANT[@]})) && [[ " ${WANT[*]} " != *" $name "* ]]; then
    continue
  fi
  if [[ ! -x "$BIN/$name" ]]; then
    echo "fuzz: $BIN/$name is missing (configure with -DCONFAB_FUZZ=ON and CC=clang-14)" >&2
    exit 2
  fi
  dir="$WORK/$name"
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp "$CORPUS/$name"/* "$dir/corpus/"
  echo "== $name: ${SECONDS_EACH}s, -max_len=$max_len"
  set +e
  "$BIN/$name" -max_total_time="$SECONDS_EACH" -max_len="$max_len" -timeout=10 \
    -rss_limit_mb=2048 -detect_leaks=1 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1
  rc=$?
  set -e
  grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$dir/log" || true
  found=$(find "$dir/artifacts" -type f | head -n 1)
  if ((rc != 0)) || [[ -n $found ]]; then
    failed=$((failed + 1))
    echo "FAIL $name (exit $rc); last lines of $dir/log:"
    tail -n 40 "$dir/log"
    for f in "$dir"/artifacts/*; do
      [[ -e $f ]] && echo "reproducer: $f  (run: $BIN/$name $f)"
    done
  else
    passed=$((passed + 1))
    echo "ok   $name"
  fi
done

if ((failed == 0)) && [[ -z ${FUZZ_WORK:-} ]]; then
  rm -rf "$WORK"
fi
echo "fuzz: $passed passed, $failed failed"
((failed == 0))
