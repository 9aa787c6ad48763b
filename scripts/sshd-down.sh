#!/usr/bin/env bash
# Stop the private sshd of scripts/sshd-up.sh by its pid file. Keys, config and the
# drypipe-remote user stay (so the pinned host key stays valid). Nothing running is fine.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=services-lib.sh
source "$(dirname "$0")/services-lib.sh"

require_root
# Tests skip when this is absent: remove it first, as the server is going away.
rm -f "$SERVICES_DIR/ssh.env"
# Only the listener: sessions already open end with their clients.
stop_pidfile sshd "$SERVICES_DIR/sshd/sshd.pid" 10
log "sshd is down"
