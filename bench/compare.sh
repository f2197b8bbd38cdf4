#!/usr/bin/env bash
# bench/compare.sh — wsgate vs nginx vs HAProxy vs direct, side by side.
#
# The proxy under test runs alone on CPU 0 (one worker / one thread,
# GOMAXPROCS=1 for wsgate); the wsbench load generator and the wsbench echo
# backend share CPU 1. Every scenario runs against a freshly started proxy,
# RUNS times per target; the report prints per-metric medians. Method and
# caveats: docs/benchmarks.md.
#
# Usage: bench/compare.sh            full run (about 20 minutes)
#        QUICK=1 bench/compare.sh    short run (under 3 minutes)
# Every knob below can be set from the environment.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
	: "${RUNS:=1}" "${DURATION:=2s}" "${WARMUP:=0.5s}" "${IDLE_CONNS:=1000}" "${HOLD:=2s}" "${GROWTH=}"
else
	: "${RUNS:=3}" "${DURATION:=10s}" "${WARMUP:=2s}" "${IDLE_CONNS:=9000}" "${HOLD:=10s}" "${GROWTH=1000 3000}"
fi
TARGETS=${TARGETS:-"direct wsgate nginx haproxy"}
SCENARIOS=${SCENARIOS:-"echo idle handshake bulk http http-pooled growth"}
ECHO_CONNS=${ECHO_CONNS:-50}
ECHO_SIZE=${ECHO_SIZE:-64}
HS_CONNS=${HS_CONNS:-50}
BULK_CONNS=${BULK_CONNS:-4}
BULK_SIZE=${BULK_SIZE:-1048576}
HTTP_CONNS=${HTTP_CONNS:-50}
BACKEND_PORT=${BACKEND_PORT:-19001}
PROXY_PORT=${PROXY_PORT:-19080}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
# HAProxy refuses to start when 2*maxconn+14 file descriptors exceed the
# open-file limit; with the 20000 hard limit here 9990 is the most it takes.
HAPROXY_MAXCONN=${HAPROXY_MAXCONN:-9990}
# Before each run, wait up to QUIET_WAIT for the machine to be quiet (at most
# QUIET_PCT % of one core busy): other work on the box skews every figure.
QUIET_PCT=${QUIET_PCT:-10}
QUIET_WAIT=${QUIET_WAIT:-$([[ $QUICK == 1 ]] && echo 5s || echo 60s)}

log() { printf '[compare] %s\n' "$*" >&2; }

# --- environment -----------------------------------------------------------

ulimit -n "$(ulimit -Hn)"
log "open files: $(ulimit -n)"

need_pkgs=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_pkgs+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]] || need_pkgs+=(haproxy)
if ((${#need_pkgs[@]})); then
	log "installing ${need_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# Debian starts the packaged services; they must not hold ports or CPU.
for svc in nginx haproxy; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
		systemctl stop "$svc" || true
	fi
done
PATH=$PATH:/usr/sbin

mkdir -p bin bench/results
log "building wsbench"
go build -o bin/wsbench ./cmd/wsbench
WSGATE_ERR=""
log "building wsgate"
if ! out=$(go build -o bin/wsgate ./cmd/wsgate 2>&1); then
	WSGATE_ERR="go build ./cmd/wsgate failed: $(printf '%s' "$out" | head -3)"
	log "$WSGATE_ERR"
fi

TMP=$(mktemp -d /tmp/wsbench.XXXXXX)
STARTED=()
cleanup() {
	local p
	for p in "${STARTED[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

# --- configs ---------------------------------------------------------------

# The seed-004 shape. wsgate runs this very file.
cat >"$TMP/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $TMP/nginx.pid; error_log stderr; events { worker_connections 20000; }
http { access_log off;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  upstream websocket { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
  server { listen 127.0.0.1:$PROXY_PORT; location / { proxy_pass http://websocket; proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection \$connection_upgrade; proxy_set_header Host \$host; proxy_read_timeout 3600s; } } }
EOF

# The same file with the plain-request location set up the way nginx documents
# for upstream keep-alive (proxy_http_version 1.1, Connection cleared,
# keepalive in the upstream): nginx, like wsgate, then pools upstream
# connections. Used, by nginx and wsgate alike, for the http-pooled scenario.
cat >"$TMP/nginx-pooled.conf" <<EOF
worker_processes 1; daemon off; pid $TMP/nginx.pid; error_log stderr; events { worker_connections 20000; }
http { access_log off;
  upstream websocket { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
  server { listen 127.0.0.1:$PROXY_PORT; location / { proxy_pass http://websocket; proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection ""; proxy_set_header Host \$host; proxy_read_timeout 3600s; } } }
EOF

# HAProxy doing the same work: WebSocket tunnels held for an hour, and —
# like the nginx config, which sends "Connection: close" upstream for every
# request without Upgrade — a new backend connection per plain request.
cat >"$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $HAPROXY_MAXCONN
defaults
    mode http
    maxconn $HAPROXY_MAXCONN
    timeout connect 5s
    timeout client 75s
    timeout server 3600s
    timeout tunnel 3600s
    timeout http-keep-alive 75s
    option http-server-close
frontend fe
    bind 127.0.0.1:$PROXY_PORT
    default_backend websocket
backend websocket
    server s1 127.0.0.1:$BACKEND_PORT
EOF

# For http-pooled: the same without "option http-server-close", so HAProxy
# keeps server connections alive and reuses them (2.6's default, http-reuse
# safe).
grep -Ev '^[[:space:]]*option[[:space:]]+http-server-close[[:space:]]*$' "$TMP/haproxy.cfg" >"$TMP/haproxy-pooled.cfg"

# --- processes -------------------------------------------------------------

# wait_port PORT PID: wait until PORT accepts connections, at most 10 s, and
# fail early when PID dies.
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		if [[ -n ${2:-} ]] && ! kill -0 "$2" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# port_busy PORT: whether something already accepts on PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop_pid PID: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
	local i
	kill -TERM "$1" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# CONF selects the config variant a proxy starts with: empty for nginx.conf
# and haproxy.cfg, "pooled" for nginx-pooled.conf and haproxy-pooled.cfg.
# run_scenario sets it for one run_one call (CONF=pooled run_one ...).
CONF=""

# start_target NAME: start the proxy with the CONF variant of its config, set
# PROXY_PID and URL. On failure, set START_ERR and return 1.
start_target() {
	PROXY_PID="" START_ERR="" URL="ws://127.0.0.1:$PROXY_PORT/"
	local errlog="$TMP/$1.err" suffix=${CONF:+-$CONF}
	if [[ $1 != direct ]] && port_busy "$PROXY_PORT"; then
		START_ERR="port $PROXY_PORT is already in use"
		return 1
	fi
	case $1 in
	direct)
		URL="ws://127.0.0.1:$BACKEND_PORT/"
		return 0
		;;
	nginx)
		taskset -c "$PROXY_CPU" nginx -e stderr -c "$TMP/nginx$suffix.conf" 2>"$errlog" &
		;;
	haproxy)
		taskset -c "$PROXY_CPU" haproxy -db -f "$TMP/haproxy$suffix.cfg" 2>"$errlog" &
		;;
	wsgate)
		if [[ -n $WSGATE_ERR ]]; then
			START_ERR=$WSGATE_ERR
			return 1
		fi
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" bin/wsgate -c "$TMP/nginx$suffix.conf" 2>"$errlog" &
		;;
	*)
		START_ERR="unknown target $1"
		return 1
		;;
	esac
	PROXY_PID=$!
	STARTED+=("$PROXY_PID")
	if ! wait_port "$PROXY_PORT" "$PROXY_PID"; then
		START_ERR="$1 did not start: $(tail -c 300 "$errlog" | tr '\n' ' ')"
		stop_pid "$PROXY_PID"
		PROXY_PID=""
		return 1
	fi
	sleep 0.3 # let the worker settle before the baseline sample
}

# json_error MODE TAG TARGET MSG: a result line for a run that did not happen.
json_error() {
	local msg
	msg=$(printf '%s' "$4" | tr -d '"\\' | tr '\n\t\r' '   ' | cut -c1-300)
	printf '{"mode":"%s","tag":"%s","target":"%s","url":"","conns":0,"size":0,"error":"%s"}\n' "$1" "$2" "$3" "$msg"
}

# start_backend: start the wsbench echo backend on LOAD_CPU, set BACKEND_PID.
start_backend() {
	taskset -c "$LOAD_CPU" bin/wsbench echo-server -addr "127.0.0.1:$BACKEND_PORT" 2>"$TMP/backend.err" &
	BACKEND_PID=$!
	STARTED+=("$BACKEND_PID")
	wait_port "$BACKEND_PORT" "$BACKEND_PID" || {
		log "echo backend did not start: $(cat "$TMP/backend.err")"
		exit 1
	}
}

# run_one TARGET MODE TAG ARGS...: one measured run against a fresh proxy
# and a fresh backend, so that no run inherits another's heap or sockets
# (a backend that has just held 9000 WebSockets slows the next scenario
# down by a fifth).
run_one() {
	local target=$1 mode=$2 tag=$3
	shift 3
	start_backend
	log "$(bin/wsbench quiet -max-busy "$QUIET_PCT" -timeout "$QUIET_WAIT")"
	if ! start_target "$target"; then
		stop_pid "$BACKEND_PID"
		json_error "$mode" "$tag" "$target" "$START_ERR" >>"$RESULTS"
		log "$target $tag: n/a ($START_ERR)"
		return 0
	fi
	local pidflag=() line
	[[ -n $PROXY_PID ]] && pidflag=(-pid "$PROXY_PID")
	if line=$(taskset -c "$LOAD_CPU" bin/wsbench "$mode" -url "$URL" -target "$target" -tag "$tag" \
		-backend-pid "$BACKEND_PID" "${pidflag[@]}" "$@" 2>"$TMP/wsbench.err"); then
		printf '%s\n' "$line" >>"$RESULTS"
		log "$target $tag: $line"
	else
		json_error "$mode" "$tag" "$target" "wsbench failed: $(tail -c 300 "$TMP/wsbench.err")" >>"$RESULTS"
		log "$target $tag: wsbench failed: $(cat "$TMP/wsbench.err")"
	fi
	if [[ -n $PROXY_PID ]]; then
		stop_pid "$PROXY_PID"
	fi
	stop_pid "$BACKEND_PID"
}

# run_scenario TARGET SCENARIO
run_scenario() {
	local t=$1 common=(-duration "$DURATION" -warmup "$WARMUP")
	case $2 in
	echo) run_one "$t" echo echo "${common[@]}" -conns "$ECHO_CONNS" -size "$ECHO_SIZE" ;;
	idle) run_one "$t" idle "idle-$IDLE_CONNS" -conns "$IDLE_CONNS" -duration "$HOLD" -size 64 ;;
	handshake) run_one "$t" handshake handshake "${common[@]}" -conns "$HS_CONNS" -size 64 ;;
	bulk) run_one "$t" bulk bulk "${common[@]}" -conns "$BULK_CONNS" -size "$BULK_SIZE" ;;
	http) run_one "$t" http http "${common[@]}" -conns "$HTTP_CONNS" ;;
	http-pooled) CONF=pooled run_one "$t" http "http, pooled upstream" "${common[@]}" -conns "$HTTP_CONNS" ;;
	growth)
		local n
		for n in $GROWTH; do
			run_one "$t" idle "idle-$n" -conns "$n" -duration "$HOLD" -size 64
		done
		;;
	*) log "unknown scenario $2" ;;
	esac
}

# --- run -------------------------------------------------------------------

STAMP=$(date -u +%Y%m%d-%H%M%S)
RESULTS=bench/results/$STAMP.jsonl
: >"$RESULTS"

if port_busy "$BACKEND_PORT"; then
	log "port $BACKEND_PORT is already in use; set BACKEND_PORT"
	exit 1
fi
start=$SECONDS
for ((run = 1; run <= RUNS; run++)); do
	for t in $TARGETS; do
		for s in $SCENARIOS; do
			log "run $run/$RUNS: $t $s"
			run_scenario "$t" "$s"
		done
	done
done

REPORT=bench/results/$STAMP.md
{
	echo "wsgate benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
	echo "- versions: $(nginx -v 2>&1 | sed 's/.*: //'), HAProxy $(haproxy -v | head -1 | awk '{print $3}'), $(go version | awk '{print $3}'), wsgate $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "- settings: QUICK=$QUICK RUNS=$RUNS DURATION=$DURATION WARMUP=$WARMUP IDLE_CONNS=$IDLE_CONNS HOLD=$HOLD GROWTH='$GROWTH' ECHO=${ECHO_CONNS}x${ECHO_SIZE}B HS_CONNS=$HS_CONNS BULK=${BULK_CONNS}x${BULK_SIZE}B HTTP_CONNS=$HTTP_CONNS HAPROXY_MAXCONN=$HAPROXY_MAXCONN QUIET_PCT=$QUIET_PCT"
	echo "- proxy on CPU $PROXY_CPU, wsbench load and echo backend on CPU $LOAD_CPU; median of $RUNS run(s) per cell; took $((SECONDS - start)) s"
	echo
	bin/wsbench report "$RESULTS"
} >"$REPORT"
cp "$REPORT" bench/results/latest.md
cat "$REPORT"
log "results: $RESULTS, report: $REPORT"
