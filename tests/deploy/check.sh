#!/usr/bin/env bash
# check.sh: tests the deployment material in deploy/ the way CI can without
# systemd as PID 1, a container engine or a cluster.
#
#   1. builds confab as a package build (prefix /usr) in a scratch directory
#      and makes the .deb with cpack; checks its control data (Depends cover
#      every library the binaries link), conffiles and contents;
#   2. unpacks it into a scratch root (dpkg-deb -x), runs both binaries'
#      --version and the gateway's --check-config on the shipped confab.env,
#      and checks that confab.env documents every variable of common/config.c;
#   3. creates the user and /run/confab in the scratch root with
#      systemd-sysusers/systemd-tmpfiles --root, runs confab-generator, and
#      runs `systemd-analyze verify --root` on every unit as installed (so
#      ExecStart= names the packaged binaries) and `systemd-analyze security`
#      with a ceiling on the exposure score; runs both packaged daemons under
#      strace the way the units do: the gateway through the unit's own
#      ExecStart= under systemd-socket-activate (it must take the passed
#      socket, not bind PORT), both with a NOTIFY_SOCKET and WATCHDOG_USEC of
#      this test's and their metrics ports on; drives them through /readyz,
#      /metrics (the counters must move), a login, a WebSocket round trip via
#      a private Redis, a Redis outage (/readyz 503, then 200 again) and
#      SIGTERM; checks the READY/STATUS/WATCHDOG/STOPPING datagrams, and
#      every system call and socket family against the units'
#      SystemCallFilter= and RestrictAddressFamilies=;
#   4. renders every kustomization under deploy/k8s with `kubectl kustomize`
#      (KUBECTL names another kubectl), checks its invariants
#      (tests/deploy/k8s_check.py) and validates it against the Kubernetes
#      schemas (tests/deploy/validate.mjs, npm kubernetes-models);
#   5. checks that the Dockerfile's COPY sources exist and it runs as non-root.
#
# A missing tool is a failure, never a skip; the one check that needs root
# says SKIP when run without. Ends with "deploy: N passed, N failed".
# Usage: tests/deploy/check.sh   (registered in ctest as deploy.check;
#        KEEP_SCRATCH=1 keeps its scratch directory)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
python=/usr/bin/python3 # Debian's, with python3-yaml
kubectl=${KUBECTL:-kubectl}
# The exposure ceiling for `systemd-analyze security` (0 = best, 10 = worst);
# docs/operations.md records the current scores.
max_exposure=1.2

passed=0
failed=0
skipped=0
ok() {
  passed=$((passed + 1))
  echo "ok   $*"
}
bad() {
  failed=$((failed + 1))
  echo "FAIL $*"
}
skip() {
  skipped=$((skipped + 1))
  echo "SKIP $*"
}
# expect DESCRIPTION COMMAND...: runs COMMAND, passes when it exits 0.
expect() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() {
  if ((skipped)); then
    echo "deploy: $passed passed, $failed failed, $skipped skipped"
  else
    echo "deploy: $passed passed, $failed failed"
  fi
  [[ $failed -eq 0 ]]
  exit
}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/confab-deploy.XXXXXX")
pids=() # background processes to stop on exit
# KEEP_SCRATCH=1 keeps the scratch directory (traces, logs) for a look.
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null
  if [[ -n ${KEEP_SCRATCH:-} ]]; then echo "kept $scratch"; else rm -rf "$scratch"; fi' EXIT

# ---- tools -------------------------------------------------------------------
missing=()
for t in cmake cpack dpkg-deb dpkg-shlibdeps file systemd-analyze systemd-sysusers \
  systemd-tmpfiles systemd-socket-activate strace chrt redis-server "$kubectl" node npm; do
  command -v "$t" >/dev/null || missing+=("$t")
done
[[ -x $python ]] && $python -c 'import yaml' 2>/dev/null || missing+=("python3-yaml")
if ((${#missing[@]})); then
  bad "tools present (missing: ${missing[*]}; run \`make deps\`, see scripts/deps.sh)"
  finish
fi
ok "tools present"

# ---- 1. the Debian package -------------------------------------------------------
# Built the way deploy/Dockerfile's build stage builds it: from only what its
# COPY lines put in the image, with its cmake flags. A path the build needs
# that the image leaves out then fails here as it would in `docker build`
# (no container engine here to run that).
dockerfile=$src/deploy/Dockerfile
ctx=$scratch/ctx
mkdir -p "$ctx"
# the build stage's COPY lines (before the second FROM), with their
# continuation lines joined; `COPY a b dest`: Docker copies a directory's
# contents into dest, a file into dest (a directory when it ends in /)
copies=$(awk '/^FROM/ { n++ } n == 1' "$dockerfile" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' |
  grep '^COPY ' | grep -v -- '--from')
while read -r _ line; do
  read -ra words <<<"$line"
  dest=${words[-1]}
  unset 'words[-1]'
  for f in "${words[@]}"; do
    if [[ -d $src/$f ]]; then
      mkdir -p "$ctx/$dest" && cp -a "$src/$f/." "$ctx/$dest/"
    elif [[ $dest == */ ]]; then
      mkdir -p "$ctx/$dest" && cp -a "$src/$f" "$ctx/$dest"
    else
      mkdir -p "$(dirname "$ctx/$dest")" && cp -a "$src/$f" "$ctx/$dest"
    fi
  done
done <<<"$copies"
read -ra docker_flags <<<"$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$dockerfile" |
  grep -o 'cmake -S \. -B [^&]*' | grep -o -- '-D[^ ]*' | tr '\n' ' ')"
build=$scratch/build
echo "-- building a package build in $build from the Dockerfile's context (${docker_flags[*]})"
if ((${#docker_flags[@]} >= 3)) &&
  cmake -S "$ctx" -B "$build" "${docker_flags[@]}" >"$scratch/cmake.log" 2>&1 &&
  cmake --build "$build" -j "$(nproc)" >>"$scratch/cmake.log" 2>&1 &&
  (cd "$build" && cpack -G DEB) >>"$scratch/cmake.log" 2>&1; then
  ok "package build and cpack -G DEB, from the Dockerfile's COPY sources and flags"
else
  tail -30 "$scratch/cmake.log"
  bad "package build and cpack -G DEB"
  finish
fi
version=$(sed -n 's/^project(confab VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
debs=("$build"/confab_*.deb)
deb=${debs[0]}
expect "one package, confab_${version}_*.deb" test "${#debs[@]}" -eq 1 -a -f "$deb" \
  -a "$(basename "$deb" | cut -d_ -f2)" = "$version"
field() { dpkg-deb -f "$deb" "$1"; }
expect "Package: confab" test "$(field Package)" = confab
expect "Version: $version" test "$(field Version)" = "$version"
expect "Recommends: redis-server" test "$(field Recommends)" = redis-server

# Depends must name the package of every shared library the binaries need.
depends=$(field Depends)
echo "     Depends: $depends"
for bin in gateway/confab-gateway broker/confab-broker; do
  for soname in $(readelf -d "$build/$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    pkg=$(dpkg -S "*/$soname" 2>/dev/null | head -1 | cut -d: -f1)
    if [[ -z $pkg ]]; then
      bad "$bin: the package providing $soname is known (dpkg -S)"
    elif [[ ", $depends," == *", $pkg "* || ", $depends," == *", $pkg,"* ]]; then
      ok "$bin: $soname -> Depends has $pkg"
    else
      bad "$bin: $soname -> Depends lacks $pkg"
    fi
  done
done

control=$scratch/control
dpkg-deb -e "$deb" "$control"
expect "conffiles: /etc/confab/confab.env" grep -qx /etc/confab/confab.env "$control/conffiles"
for s in postinst prerm postrm; do
  expect "maintainer script $s is executable sh without syntax errors" \
    bash -c '[[ -x $1 ]] && sh -n "$1"' _ "$control/$s"
done
expect "postinst runs systemd-sysusers and systemd-tmpfiles" \
  bash -c 'grep -q "systemd-sysusers confab.conf" "$1" && grep -q "systemd-tmpfiles --create confab.conf" "$1"' \
  _ "$control/postinst"

listing=$(dpkg-deb -c "$deb")
contents=$(awk '{print $6}' <<<"$listing")
for f in ./usr/bin/confab-gateway ./usr/bin/confab-broker \
  ./usr/share/confab/frontend/index.html \
  ./usr/lib/systemd/system/confab-broker@.service ./usr/lib/systemd/system/confab-gateway@.service \
  ./usr/lib/systemd/system/confab-gateway@.socket ./usr/lib/systemd/system/confab.target \
  ./usr/lib/systemd/system-generators/confab-generator \
  ./usr/lib/sysusers.d/confab.conf ./usr/lib/tmpfiles.d/confab.conf \
  ./etc/confab/confab.env ./usr/share/doc/confab/copyright ./usr/share/doc/confab/operations.md \
  ./usr/share/doc/confab/monitoring.md; do
  expect "package contains $f" grep -qx -- "$f" <<<"$contents"
done
expect "confab.env is not world-readable in the package" \
  grep -q "^-rw-r----- .* ./etc/confab/confab.env$" <<<"$listing"

# ---- 2. unpacked: the binaries run, the shipped settings are valid ------------------
root=$scratch/root
dpkg-deb -x "$deb" "$root"
expect "confab-gateway --version says $version" \
  bash -c '[[ $("$1/usr/bin/confab-gateway" --version) == "confab-gateway $2" ]]' _ "$root" "$version"
expect "confab-broker --version says $version" \
  bash -c '[[ $("$1/usr/bin/confab-broker" --version) == "confab-broker $2" ]]' _ "$root" "$version"
# The shipped confab.env is valid as it stands (JWT_SECRET aside, which the
# operator adds); the env is cleared so nothing from this shell leaks in.
secret=0123456789abcdef0123456789abcdef
if out=$(cd "$scratch" && env -i PATH=/usr/bin:/bin CONFAB_ENV_FILE="$root/etc/confab/confab.env" \
  JWT_SECRET=$secret "$root/usr/bin/confab-gateway" --check-config 2>&1); then
  ok "confab-gateway --check-config accepts the shipped confab.env"
  expect "shipped confab.env: FRONTEND_DIR=/usr/share/confab/frontend, RUN_DIR=/run/confab" \
    bash -c 'grep -qx FRONTEND_DIR=/usr/share/confab/frontend <<<"$1" && grep -qx RUN_DIR=/run/confab <<<"$1"' _ "$out"
else
  echo "$out"
  bad "confab-gateway --check-config accepts the shipped confab.env"
fi
if out=$(cd "$scratch" && env -i PATH=/usr/bin:/bin "$root/usr/bin/confab-broker" --check-config 2>&1); then
  expect "the packaged gateway's built-in FRONTEND_DIR is /usr/share/confab/frontend" \
    grep -qx FRONTEND_DIR=/usr/share/confab/frontend <<<"$out"
else
  echo "$out"
  bad "confab-broker --check-config runs with defaults"
fi
# Every variable of the config table is documented in confab.env.example,
# and in the repository's .env.example (README: "lists them all").
vars=$(sed -n 's/^ *{"\([A-Z_][A-Z0-9_]*\)", K_.*/\1/p' "$src/common/config.c")
expect "common/config.c has a table of variables" test -n "$vars"
for v in $vars; do
  expect "confab.env.example documents $v" grep -Eq "^(# )?$v=" "$src/deploy/confab.env.example"
  expect ".env.example documents $v" grep -Eq "^(# )?$v=" "$src/.env.example"
done
expect "confab.env.example has no inline comments (systemd would keep them in the value)" \
  bash -c '! grep -Eq "^[A-Z_]+=.*[[:space:]]#" "$1"' _ "$src/deploy/confab.env.example"

# ---- 3. systemd ------------------------------------------------------------------
units=$root/usr/lib/systemd/system
# The scratch root needs the system's own units (sysinit.target, ...) and
# /bin/sh (the gateway's ExecStart=) for verify; the confab user and
# /run/confab come from the package's own sysusers.d and tmpfiles.d files.
cp -an /lib/systemd/system/. "$units/"
mkdir -p "$root/bin"
cp -L /bin/sh "$root/bin/sh"
mkdir -p "$root/etc"
expect "systemd-sysusers --root creates the confab user" \
  bash -c 'systemd-sysusers --root="$1" "$1/usr/lib/sysusers.d/confab.conf" 2>/dev/null &&
    grep -q "^confab:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin$" "$1/etc/passwd"' _ "$root"
if [[ $(id -u) -eq 0 ]]; then
  expect "systemd-tmpfiles --root creates /run/confab 0750 confab:confab" \
    bash -c 'systemd-tmpfiles --root="$1" --create "$1/usr/lib/tmpfiles.d/confab.conf" &&
      uid=$(awk -F: "\$1==\"confab\"{print \$3}" "$1/etc/passwd") &&
      [[ $(stat -c "%a %u" "$1/run/confab") == "750 $uid" ]]' _ "$root"
else
  skip "systemd-tmpfiles --root creates /run/confab (needs root to chown; CI runs as root)"
fi

# The generator: defaults, the shipped file, a custom file, a bad value.
gen=$root/usr/lib/systemd/system-generators/confab-generator
generate() { # generate ENVFILE OUTDIR
  CONFAB_ENV_FILE=$1 CONFAB_UNIT_DIR=/usr/lib/systemd/system "$gen" "$2" "$2.early" "$2.late"
}
wants() { (cd "$1/confab.target.wants" && ls | sort | tr '\n' ' '); }
generate /nonexistent "$scratch/gen-default" 2>/dev/null
expect "generator without confab.env: 2 brokers, 2 gateways, port 8080" \
  bash -c '[[ "$1" == "confab-broker@0.service confab-broker@1.service confab-gateway@0.service confab-gateway@0.socket confab-gateway@1.service confab-gateway@1.socket " ]] &&
    grep -qx ListenStream=8080 "$2/confab-gateway@.socket.d/50-listen.conf"' \
  _ "$(wants "$scratch/gen-default")" "$scratch/gen-default"
cat >"$scratch/custom.env" <<'EOF'
BROKERS=1
BROKERS=3
GATEWAY_WORKERS="4"
PORT='9090'
LISTEN_ADDR=::1
EOF
generate "$scratch/custom.env" "$scratch/gen-custom"
expect "generator: BROKERS=3 (last wins), GATEWAY_WORKERS=\"4\", [::1]:9090" \
  bash -c 'w=$(cd "$1/confab.target.wants" && ls) &&
    [[ $(grep -c "^confab-broker@" <<<"$w") == 3 && $(grep -c "^confab-gateway@.*\.socket$" <<<"$w") == 4 &&
       $(grep -c "^confab-gateway@.*\.service$" <<<"$w") == 4 ]] &&
    [[ $(readlink "$1/confab.target.wants/confab-broker@2.service") == /usr/lib/systemd/system/confab-broker@.service ]] &&
    grep -qx "ListenStream=\[::1\]:9090" "$1/confab-gateway@.socket.d/50-listen.conf"' _ "$scratch/gen-custom"
printf 'BROKERS=two\nPORT=70000\n' >"$scratch/bad.env"
expect "generator: a malformed value is reported and the default used" \
  bash -c 'err=$(CONFAB_ENV_FILE=$2 CONFAB_UNIT_DIR=/usr/lib/systemd/system "$3" "$1" 2>&1) &&
    grep -q "BROKERS=\"two\"" <<<"$err" && grep -q "PORT=\"70000\"" <<<"$err" &&
    [[ $(ls "$1/confab.target.wants" | grep -c broker) == 2 ]] &&
    grep -qx ListenStream=8080 "$1/confab-gateway@.socket.d/50-listen.conf"' \
  _ "$scratch/gen-bad" "$scratch/bad.env" "$gen"
printf 'export BROKERS=3\nGATEWAY_WORKERS=3 # three\n' >"$scratch/sysd.env"
expect "generator: an export line is ignored and an inline comment is no comment, as under systemd" \
  bash -c 'err=$(CONFAB_ENV_FILE=$2 CONFAB_UNIT_DIR=/usr/lib/systemd/system "$3" "$1" 2>&1) &&
    grep -q "ignoring \"export BROKERS=" <<<"$err" && grep -q "GATEWAY_WORKERS=\"3 # three\"" <<<"$err" &&
    [[ $(ls "$1/confab.target.wants" | grep -c broker) == 2 ]] &&
    [[ $(ls "$1/confab.target.wants" | grep -c "gateway@.*service") == 2 ]]' \
  _ "$scratch/gen-sysd" "$scratch/sysd.env" "$gen"
# What the generator makes of the shipped file goes where systemd reads units
# from, so verify loads the instances with their drop-in.
expect "generator runs on the shipped confab.env" \
  generate "$root/etc/confab/confab.env" "$root/etc/systemd/system"

# verify prints nothing for a clean unit (it exits 0 even for unknown keys, so
# any output fails the check).
for u in confab-broker@.service confab-gateway@.service confab-gateway@.socket confab.target; do
  if out=$(systemd-analyze verify --root="$root" "$units/$u" 2>&1) && [[ -z $out ]]; then
    ok "systemd-analyze verify $u"
  else
    echo "$out"
    bad "systemd-analyze verify $u"
  fi
done
if out=$(systemd-analyze verify --root="$root" confab.target confab-broker@0.service \
  confab-broker@1.service confab-gateway@0.socket confab-gateway@1.service 2>&1) && [[ -z $out ]]; then
  ok "systemd-analyze verify of the instances confab.target wants, with the generated drop-in"
else
  echo "$out"
  bad "systemd-analyze verify of the instances confab.target wants, with the generated drop-in"
fi
for u in confab-broker@.service confab-gateway@.service; do
  out=$(systemd-analyze security --offline=yes --root="$root" "$units/$u" 2>&1)
  score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
  if [[ -n $score ]] && awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s <= m) }'; then
    ok "systemd-analyze security $u: exposure $score <= $max_exposure"
  else
    grep '✗' <<<"$out"
    bad "systemd-analyze security $u: exposure ${score:-?} <= $max_exposure"
  fi
done
# The units' system call filter and address families must let the daemons do
# their work, and the daemons must do what the units expect of them: run the
# packaged binaries under strace as the units run them (the gateway through
# the unit's ExecStart= with a socket from systemd-socket-activate, both with
# a notify socket, a watchdog and their metrics ports), through readiness,
# metrics, a login, the frontend, a WebSocket message round trip via the
# broker and Redis, a Redis outage and a SIGTERM drain; then compare what they
# called with what the units allow.
trace_run() { # trace_run NAME ARGS...: starts ARGS under strace, sets $tracer
  strace -f -qq -o "$scratch/$1.trace" "${@:2}" &
  tracer=$!
  pids+=("$tracer")
}
tracee() { # tracee NAME: pid of the traced program (first field of its trace)
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s $scratch/$1.trace ]] && { head -1 "$scratch/$1.trace" | cut -d' ' -f1; return; }
    sleep 0.05
  done
}
# Four free ports: the public one (systemd-socket-activate's), the gateway's
# PORT (which it must then leave alone), a base for METRICS_PORT (the unit
# runs instance 1, so base + 1 is used), and BROKER_METRICS_PORT. Picked at
# random outside the kernel's ephemeral range (as tests/support/harness.c
# does): a port from it can become the local port of another test's outgoing
# connection before the daemon binds it.
read -r port unused_port mport_base bmport <<<"$($python -c '
import random, socket
try:
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
except (OSError, ValueError):
    lo, hi = 32768, 60999
pool = list(range(10000, lo)) + list(range(hi + 1, 65536))
held, ports = [], []
def free(p=0):
    s = socket.socket()
    s.bind(("127.0.0.1", p))
    held.append(s)
    return s.getsockname()[1]
def pick():
    for _ in range(200 if len(pool) >= 1000 else 0):
        try:
            return free(random.choice(pool))
        except OSError:
            pass
    return free()
while len(ports) < 4:
    p = pick()
    if len(ports) == 2:  # METRICS_PORT + 1 must be free too
        try:
            free(p + 1)
        except OSError:
            continue
    ports.append(p)
print(*ports)')"
mport=$((mport_base + 1))
mkdir -p "$scratch/run"
start_redis() {
  redis-server --port 0 --unixsocket "$scratch/redis.sock" --save '' --appendonly no \
    --logfile "$scratch/redis.log" &
  redis_pid=$!
  pids+=("$redis_pid")
  for ((i = 0; i < 100; i++)); do [[ -S $scratch/redis.sock ]] && break; sleep 0.05; done
}
start_redis
# The datagrams the daemons send to NOTIFY_SOCKET, one line each.
$python -c '
import os, socket, sys
socks = []
for path in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(path); socks.append((s, path))
import selectors
sel = selectors.DefaultSelector()
for s, path in socks:
    sel.register(s, selectors.EVENT_READ, open(path + ".log", "a", buffering=1))
while True:
    for key, _ in sel.select():
        key.data.write(key.fileobj.recv(4096).decode("utf-8", "replace").replace("\n", " | ") + "\n")
' "$scratch/notify-gateway" "$scratch/notify-broker" &
pids+=($!)
for ((i = 0; i < 100; i++)); do [[ -S $scratch/notify-broker ]] && break; sleep 0.05; done
daemon_env=(RUN_DIR="$scratch/run" REDIS_ADDR="unix:$scratch/redis.sock"
  BROKERS=1 JWT_SECRET="$secret" LISTEN_ADDR=127.0.0.1 FRONTEND_DIR="$root/usr/share/confab/frontend"
  LOG_LEVEL=warn WATCHDOG_USEC=1000000 METRICS_PORT="$mport_base" BROKER_METRICS_PORT="$bmport")
# The gateway unit's ExecStart= as systemd would run it for instance 1 ($$ is
# a $, %i the instance), with the packaged binary's path.
gw_unit=$units/confab-gateway@.service
gw_cmd=$(sed -n "s/^ExecStart=\/bin\/sh -c '\(.*\)'\$/\1/p" "$gw_unit" | sed -e 's/\$\$/$/g' -e 's/%i/1/g')
gw_cmd=${gw_cmd//\/usr\/bin\/confab-gateway/$root\/usr\/bin\/confab-gateway}
expect "confab-gateway@.service: ExecStart= is /bin/sh -c '... exec $root/usr/bin/confab-gateway'" \
  grep -q "exec $root/usr/bin/confab-gateway\$" <<<"$gw_cmd"
# The units' CPUSchedulingPolicy=, applied the way systemd does before the
# exec (chrt's own system call comes before what is counted below).
policy_of() {
  case $(sed -n 's/^CPUSchedulingPolicy=//p' "$1") in
  batch) echo "chrt --batch 0" ;;
  "") echo "env" ;;
  *) echo "unsupported-CPUSchedulingPolicy" ;;
  esac
}
read -ra br_policy <<<"$(policy_of "$units/confab-broker@.service")"
read -ra gw_policy <<<"$(policy_of "$gw_unit")"
cd "$scratch" || exit 1 # no stray .env: the daemons read one from their directory
trace_run broker env -i PATH=/usr/bin:/bin "${daemon_env[@]}" NOTIFY_SOCKET="$scratch/notify-broker" \
  "${br_policy[@]}" "$root/usr/bin/confab-broker" --shard 0
declare -A tracers=([broker]=$tracer)
# systemd-socket-activate listens on $port, execs on the first connection with
# LISTEN_FDS=1 and its own LISTEN_PID, and passes on only those: env adds the
# rest, and every exec keeps the pid, as under systemd.
trace_run gateway env -i PATH=/usr/bin:/bin systemd-socket-activate -l "127.0.0.1:$port" \
  env "${daemon_env[@]}" PORT="$unused_port" GATEWAY_WORKERS=2 NOTIFY_SOCKET="$scratch/notify-gateway" \
  "${gw_policy[@]}" /bin/sh -c "$gw_cmd"
tracers[gateway]=$tracer
cd - >/dev/null || exit 1
exercise=$here/exercise.py
expect "gateway (socket-activated) + broker: readyz, healthz, metrics, login, frontend, WebSocket round trip via Redis" \
  timeout 90 $python "$exercise" run "$port" "$mport" "$bmport"
expect "the socket-activated gateway took systemd's socket and left PORT alone" \
  bash -c '! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null' _ "$unused_port"
expect "the unit's ExecStart= ran one worker (GATEWAY_WORKERS=1) on METRICS_PORT + instance" \
  bash -c '[[ $(pgrep -P "$1" -c) == 0 ]] && $2 "$3" status "http://127.0.0.1:$4/metrics" 200 2' \
  _ "$(tracee gateway)" "$python" "$exercise" "$mport"
# Redis goes away: brokers stay alive (/healthz) and turn not ready, and so do
# the gateways (/readyz); it comes back: both ready again, nothing restarted.
kill -TERM "$redis_pid"
wait "$redis_pid" 2>/dev/null
expect "Redis down: broker /readyz 503 and confab_broker_redis_up 0" \
  bash -c '$1 "$2" status "http://127.0.0.1:$3/readyz" 503 10 &&
    [[ $($1 "$2" sample "http://127.0.0.1:$3/metrics" "confab_broker_redis_up{conn=\"subscriber\"}") == 0 ]]' \
  _ "$python" "$exercise" "$bmport"
expect "Redis down: gateway /readyz 503 and confab_gateway_broker_ready 0, /healthz still 200" \
  bash -c '$1 "$2" status "http://127.0.0.1:$3/readyz" 503 10 &&
    [[ $($1 "$2" sample "http://127.0.0.1:$3/metrics" "confab_gateway_broker_ready") == 0 ]] &&
    $1 "$2" status "http://127.0.0.1:$3/healthz" 200 2 && $1 "$2" status "http://127.0.0.1:$4/healthz" 200 2' \
  _ "$python" "$exercise" "$mport" "$bmport"
start_redis
expect "Redis back: broker and gateway /readyz 200 again, canary passing, one reconnect counted" \
  bash -c '$1 "$2" status "http://127.0.0.1:$3/readyz" 200 30 && $1 "$2" status "http://127.0.0.1:$4/readyz" 200 10 &&
    [[ $($1 "$2" sample "http://127.0.0.1:$3/metrics" confab_broker_canary_ok) == 1 ]] &&
    (( $($1 "$2" sample "http://127.0.0.1:$3/metrics" confab_broker_redis_reconnects_total) >= 1 ))' \
  _ "$python" "$exercise" "$bmport" "$mport"
# Both keep pinging the watchdog (WATCHDOG_USEC=1 s: every half second).
for ((i = 0; i < 100; i++)); do
  (($(grep -c '^WATCHDOG=1$' "$scratch/notify-gateway.log") >= 3 &&
    $(grep -c '^WATCHDOG=1$' "$scratch/notify-broker.log") >= 3)) && break
  sleep 0.1
done
for d in gateway broker; do # the gateway first: it drains, then the broker stops
  pid=$(tracee "$d")
  [[ -n $pid ]] && kill -TERM "$pid"
  # strace exits with its tracee's status.
  timeout_at=$((SECONDS + 15))
  while kill -0 "${tracers[$d]}" 2>/dev/null && ((SECONDS < timeout_at)); do sleep 0.05; done
  if kill -0 "${tracers[$d]}" 2>/dev/null; then
    bad "$d exits with status 0 after SIGTERM (still running after 15 s)"
  elif wait "${tracers[$d]}"; then
    ok "$d exits with status 0 after SIGTERM"
  else
    bad "$d exits with status 0 after SIGTERM (status $?)"
  fi
done
# What the daemons told "systemd": READY=1 with a STATUS= once ready, then
# WATCHDOG=1 (WATCHDOG_USEC=1 s: about twice a second), STOPPING=1 on SIGTERM.
for d in gateway broker; do
  log=$scratch/notify-$d.log
  expect "$d: NOTIFY_SOCKET got READY=1 (with STATUS=) once, before STOPPING=1; WATCHDOG=1 pings; STATUS= updates" \
    bash -c 'ready=$(grep -n "^READY=1 | STATUS=." "$1" | cut -d: -f1) && stop=$(grep -n "^STOPPING=1" "$1" | head -1 | cut -d: -f1) &&
      [[ $(wc -l <<<"$ready") == 1 && -n $stop && $ready -lt $stop ]] &&
      (( $(grep -c "^WATCHDOG=1$" "$1") >= 3 )) && grep -q "^STATUS=." "$1"' _ "$log"
  sed -n -e '/^READY=1/p' -e '/^STOPPING=1/p' "$log" | sed "s/^/     $d: /"
done
expand_filter() { # the system calls of filter sets, recursively
  local s
  for s in "$@"; do
    systemd-analyze syscall-filter "$s" </dev/null | sed -n 's/^ \{4\}\([-@a-z_0-9]\{1,\}\)$/\1/p' |
      while read -r c; do if [[ $c == @* ]]; then expand_filter "$c"; else echo "$c"; fi; done
  done
}
for d in gateway broker; do
  unit=$units/confab-$d@.service
  # Count from the exec of what the unit runs (/bin/sh for the gateway, which
  # then execs it; the broker itself), not from env or systemd-socket-activate.
  sed -n '/^[0-9]* *execve("\(\/bin\/sh\|[^"]*\/confab-'$d'\)"/,$p' "$scratch/$d.trace" >"$scratch/$d.own"
  sed -n 's/^[0-9]\{1,\} \{1,\}\([a-z_0-9]\{1,\}\)(.*/\1/p' "$scratch/$d.own" | sort -u >"$scratch/$d.calls"
  read -ra allow <<<"$(sed -n 's/^SystemCallFilter=\([^~].*\)/\1/p' "$unit" | tr '\n' ' ')"
  read -ra deny <<<"$(sed -n 's/^SystemCallFilter=~\(.*\)/\1/p' "$unit" | tr '\n' ' ')"
  expand_filter "${allow[@]}" | sort -u >"$scratch/$d.allowed"
  expand_filter "${deny[@]}" | sort -u >"$scratch/$d.denied"
  n=$(wc -l <"$scratch/$d.calls")
  outside=$( (comm -23 "$scratch/$d.calls" "$scratch/$d.allowed"; comm -12 "$scratch/$d.calls" "$scratch/$d.denied") | sort -u | tr '\n' ' ')
  expect "$d: its $n system calls pass SystemCallFilter=${allow[*]} ~${deny[*]}${outside:+ (not: $outside)}" \
    test "$n" -gt 10 -a -z "$outside"
  families=$(grep -o 'socket(AF_[A-Z0-9]*' "$scratch/$d.own" | cut -d'(' -f2 | sort -u | tr '\n' ' ')
  allowed_families=" $(sed -n 's/^RestrictAddressFamilies=//p' "$unit") "
  bad_families=""
  for f in $families; do [[ $allowed_families == *" $f "* ]] || bad_families+="$f "; done
  expect "$d: opens only sockets of RestrictAddressFamilies (${families:-none})" test -z "$bad_families"
done

for setting in Type=notify NotifyAccess=main WatchdogSec= Restart=on-failure EnvironmentFile=/etc/confab/confab.env \
  LimitNOFILE= NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
  RestrictAddressFamilies= SystemCallFilter=@system-service 'CapabilityBoundingSet=$' User=confab \
  CPUSchedulingPolicy=batch; do
  for u in confab-broker@.service confab-gateway@.service; do
    expect "$u sets $setting" grep -q "^$setting" "$units/$u"
  done
done
expect "confab-gateway@.socket sets ReusePort=yes" grep -qx ReusePort=yes "$units/confab-gateway@.socket"
expect "gateway LimitNOFILE allows 100k connections" \
  bash -c '(( $(sed -n "s/^LimitNOFILE=//p" "$1") >= 100000 ))' _ "$units/confab-gateway@.service"
expect "no unit has a RuntimeDirectory= (the socket dir must outlive one unit)" \
  bash -c '! grep -q "^RuntimeDirectory" "$@"' _ "$src"/deploy/systemd/confab*

# ---- 4. Kubernetes --------------------------------------------------------------
echo "-- $("$kubectl" version --client 2>/dev/null | tr '\n' ' ')"
for k in base overlays/dev overlays/prod; do
  name=$(basename "$k")
  out=$scratch/k8s-$name.yaml
  # kustomize v5 warns about bases: and patchesStrategicMerge: (kept for
  # Debian 12's kubectl); anything else on stderr fails.
  if "$kubectl" kustomize "$src/deploy/k8s/$k" >"$out" 2>"$scratch/k8s.err" &&
    ! grep -v "^# Warning: '\(bases\|patchesStrategicMerge\)' is deprecated" "$scratch/k8s.err" | grep -q .; then
    ok "kubectl kustomize deploy/k8s/$k"
    if $python "$here/k8s_check.py" "$name" "$out"; then
      ok "deploy/k8s/$k: rendered invariants"
    else
      bad "deploy/k8s/$k: rendered invariants"
    fi
  else
    cat "$scratch/k8s.err"
    bad "kubectl kustomize deploy/k8s/$k"
  fi
done
# Schemas: the pinned kubernetes-models from the npm registry, installed on
# first use like the browser tests' playwright-core.
if (cd "$here" && { [[ -d node_modules/kubernetes-models ]] && [[ ! package-lock.json -nt node_modules/.package-lock.json ]] ||
  npm ci --no-audit --no-fund --loglevel=error; }) >"$scratch/npm.log" 2>&1; then
  expect "rendered manifests match the Kubernetes schemas (kubernetes-models)" \
    node "$here/validate.mjs" "$scratch"/k8s-*.yaml
else
  cat "$scratch/npm.log"
  bad "npm ci in tests/deploy (kubernetes-models for schema validation)"
fi
expect "the base's image tag is the project version ($version)" \
  grep -qx "  newTag: $version" "$src/deploy/k8s/base/kustomization.yaml"
expect "secret.template.yaml is not part of any kustomization" \
  bash -c '! grep -rqE "^[[:space:]]*-[[:space:]]*secret\.template" "$1"/deploy/k8s --include=kustomization.yaml' _ "$src"
expect "no rendered manifest contains the template's placeholder secret" \
  bash -c '! grep -q "random bytes" "$1"/k8s-*.yaml' _ "$scratch"

# ---- 5. Dockerfile (not built here: no container engine; its build stage's
# sources and flags made the package of step 1) ------------------------------------
expect "Dockerfile: both stages FROM debian:bookworm-slim" \
  bash -c '[[ $(grep -c "^FROM debian:bookworm-slim" "$1") == 2 && $(grep -c "^FROM" "$1") == 2 ]]' _ "$dockerfile"
expect "Dockerfile: runs as the non-root uid the manifests name" \
  bash -c 'grep -qx "USER 10001:10001" "$1" && grep -q "runAsUser: 10001" "$2"' \
  _ "$dockerfile" "$src/deploy/k8s/base/deployment.yaml"
for f in $(sed -n 's/^COPY \([^-][^ ]*\( [^ ]*\)*\) [^ ]*$/\1/p' "$dockerfile"); do
  expect "Dockerfile: COPY source $f exists" test -e "$src/$f"
done
expect "Dockerfile builds with the package build's flags" \
  grep -q -- "-DCMAKE_INSTALL_PREFIX=/usr .*-DCONFAB_TESTS=OFF -DCONFAB_FRONTEND_DIR=/usr/share/confab/frontend" \
  <(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$dockerfile")

finish
