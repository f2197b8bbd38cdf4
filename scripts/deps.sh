#!/usr/bin/env bash
# deps.sh installs everything wsgate's end-to-end tests need:
#
#   - nginx (Debian package), the reference implementation the differential
#     tests compare wsgate against. The system nginx service is stopped and
#     disabled: tests run their own nginx processes with private prefixes.
#   - Node.js and npm, and `npm ci` in test/node (ws, wscat, socket.io,
#     socket.io-client) for the Node peers.
#
# It is idempotent and non-interactive, and fast when everything is present.
# Run it as root (apt-get); CI runs it from .ci/run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive

log() { printf 'deps: %s\n' "$*"; }

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
	sudo_cmd=(sudo)
fi

apt_updated=0
apt_install() {
	if [ "$apt_updated" -eq 0 ]; then
		log "apt-get update"
		"${sudo_cmd[@]}" apt-get update -qq
		apt_updated=1
	fi
	log "apt-get install $*"
	"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The package's postinst starts the service and listens on :80; the tests do
# not want it. policy-rc.d (exit 101) keeps invoke-rc.d from starting it during
# this install only.
install_nginx() {
	local policy=/usr/sbin/policy-rc.d created_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
		"${sudo_cmd[@]}" chmod 755 "$policy"
		created_policy=1
	fi
	apt_install nginx
	if [ "$created_policy" -eq 1 ]; then
		"${sudo_cmd[@]}" rm -f "$policy"
	fi
}

stop_system_nginx() {
	# Disable the boot-time service, then stop a running system instance by
	# the pid file the packaged config writes. Test nginx processes use their
	# own pid files and are not touched.
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		"${sudo_cmd[@]}" systemctl disable --now nginx >/dev/null 2>&1 || true
	else
		if command -v update-rc.d >/dev/null 2>&1; then
			"${sudo_cmd[@]}" update-rc.d nginx disable >/dev/null 2>&1 || true
		fi
		if [ -x /etc/init.d/nginx ] && [ -s /run/nginx.pid ]; then
			"${sudo_cmd[@]}" /etc/init.d/nginx stop >/dev/null 2>&1 || true
		fi
	fi
	if [ -s /run/nginx.pid ]; then
		pid=$(cat /run/nginx.pid)
		if kill -0 "$pid" 2>/dev/null; then
			log "stopping system nginx (pid $pid)"
			"${sudo_cmd[@]}" nginx -s quit >/dev/null 2>&1 || "${sudo_cmd[@]}" kill -QUIT "$pid" || true
		fi
	fi
}

if ! command -v nginx >/dev/null 2>&1; then
	install_nginx
fi
stop_system_nginx
# Temp dirs nginx was compiled with (Debian: /var/lib/nginx/*) must exist.
"${sudo_cmd[@]}" mkdir -p /var/lib/nginx /var/log/nginx
log "$(nginx -v 2>&1)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	apt_install nodejs npm
fi
log "node $(node --version), npm $(npm --version)"

# wscat runs in a pseudo-terminal made by util-linux's script (bsdutils).
if ! command -v script >/dev/null 2>&1; then
	apt_install bsdutils
fi

node_dir="$root/test/node"
stamp="$node_dir/node_modules/.package-lock.json"
if [ -f "$stamp" ] && [ ! "$node_dir/package-lock.json" -nt "$stamp" ] &&
	[ -x "$node_dir/node_modules/.bin/wscat" ] && [ -d "$node_dir/node_modules/ws" ]; then
	log "test/node/node_modules is up to date"
else
	log "npm ci in test/node"
	(cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
log "ok"
