#!/usr/bin/env bash
# Start a real, private sshd on 127.0.0.1 for the integration tests of remote execution.
# Installs openssh-server/-client and rsync when missing, creates the non-root user
# drypipe-remote (locked password; remote base dirs go in its home), and keeps config, host
# key, throwaway client key, authorized_keys, known_hosts, pid file and log in
# <services dir>/sshd/ (services dir: $DRYPIPE_TEST_SERVICES, default <repo>/.test-services).
# Idempotent. Checks a real login and rsync both ways, then prints the client env and writes it
# to <services dir>/ssh.env. Env: DRYPIPE_TEST_SSH_PORT (default 2222). Needs root.
# Stop with scripts/sshd-down.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=services-lib.sh
source "$(dirname "$0")/services-lib.sh"

require_root
mkdir_services_dir
D=$SERVICES_DIR/sshd
[[ $D != *[[:space:]]* ]] || die "ssh -e options can't hold paths with spaces: $D"
PORT=${DRYPIPE_TEST_SSH_PORT:-2222}
[[ $PORT =~ ^[0-9]+$ ]] || die "DRYPIPE_TEST_SSH_PORT must be a number, not '$PORT'"
REMOTE_USER=drypipe-remote
HOST=127.0.0.1

ENV_FILE=$SERVICES_DIR/ssh.env
# On any failure, remove the env file: tests then skip instead of using a broken server.
probe=
cleanup() {
  local rc=$?
  [[ -z $probe ]] || rm -rf "$probe"
  ((rc == 0)) || rm -f "$ENV_FILE"
  return $rc
}
trap cleanup EXIT

ensure_packages "${SSHD_PACKAGES[@]}"

if ! id "$REMOTE_USER" >/dev/null 2>&1; then
  log "creating user $REMOTE_USER"
  useradd -m -s /bin/bash -c "DryPipe test remote" "$REMOTE_USER"
fi
# Locked password: key logins only (which needs UsePAM yes for a locked account).
passwd -l "$REMOTE_USER" >/dev/null 2>&1 || true

mkdir -p "$D/authorized_keys" /run/sshd
chmod 755 "$D" /run/sshd
# sshd reads authorized_keys as the user: the dir must be traversable by it.
chmod 711 "$D/authorized_keys"

HOST_KEY=$D/ssh_host_ed25519_key
CLIENT_KEY=$D/client_ed25519
KNOWN_HOSTS=$D/known_hosts
[[ -s $HOST_KEY ]] || ssh-keygen -q -t ed25519 -N '' -C drypipe-test-sshd -f "$HOST_KEY"
[[ -s $CLIENT_KEY ]] || ssh-keygen -q -t ed25519 -N '' -C drypipe-test-client -f "$CLIENT_KEY"
chmod 600 "$HOST_KEY" "$CLIENT_KEY"
install -m 644 "$CLIENT_KEY.pub" "$D/authorized_keys/$REMOTE_USER"
runuser -u "$REMOTE_USER" -- test -r "$D/authorized_keys/$REMOTE_USER" ||
  die "$REMOTE_USER can't read $D/authorized_keys/$REMOTE_USER: make the dirs above it traversable (o+x)"
read -r key_type key_b64 _ <"$HOST_KEY.pub"
echo "[$HOST]:$PORT $key_type $key_b64" >"$KNOWN_HOSTS"
chmod 644 "$KNOWN_HOSTS"

cat >"$D/sshd_config.new" <<EOF
# Written by scripts/sshd-up.sh (rewritten on each run): private sshd for tests, loopback only.
Port $PORT
ListenAddress $HOST
HostKey $HOST_KEY
PidFile $D/sshd.pid
AuthorizedKeysFile $D/authorized_keys/%u
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
# A locked account (no password) may log in with a key only through PAM.
UsePAM yes
PermitRootLogin no
AllowUsers $REMOTE_USER
# The key files are root's, in a dir chosen by whoever runs the tests (maybe under /tmp, which
# strict modes refuse); nothing but the test user's key is in there.
StrictModes no
UseDNS no
PrintMotd no
# Remote executors open many sessions at once; the defaults (10 sessions, 10 unauthenticated
# connections) would drop some at random.
MaxSessions 64
MaxStartups 64
Subsystem sftp internal-sftp
EOF
config_changed=
if replace_if_changed "$D/sshd_config.new" "$D/sshd_config"; then config_changed=1; fi
chmod 644 "$D/sshd_config"
/usr/sbin/sshd -t -f "$D/sshd_config" || die "sshd rejects $D/sshd_config"

PIDFILE=$D/sshd.pid
if [[ -n $config_changed ]] && pid_alive "$PIDFILE"; then
  log "config changed: restarting sshd"
  stop_pidfile sshd "$PIDFILE"
fi
if ! pid_alive "$PIDFILE"; then
  log "starting sshd on $HOST:$PORT"
  : >"$D/sshd.log"
  # sshd must be started by its absolute path (it re-executes itself).
  /usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log" </dev/null >>"$D/sshd.out" 2>&1 ||
    { tail_log "$D/sshd.log"; tail_log "$D/sshd.out"; die "sshd did not start (port $PORT in use? set DRYPIPE_TEST_SSH_PORT)"; }
fi

SSH_OPTS=(-F /dev/null -p "$PORT" -i "$CLIENT_KEY" -o IdentitiesOnly=yes
  -o UserKnownHostsFile="$KNOWN_HOSTS" -o StrictHostKeyChecking=yes -o BatchMode=yes
  -o ConnectTimeout=5)
# shellcheck disable=SC2029  # the commands are ours
remote() { ssh "${SSH_OPTS[@]}" "$REMOTE_USER@$HOST" "$@"; }
login_works() { [[ $(remote whoami 2>/dev/null) == "$REMOTE_USER" ]]; }
login_failed() {
  tail_log "$D/sshd.log"
  die "can't log in as $REMOTE_USER@$HOST:$PORT ($*)"
}
# sshd's exit code does not tell a bind failure (it forks first): its log does. It writes the
# pid file once it listens.
bind_failed() { grep -q 'Cannot bind any address' "$D/sshd.log"; }
sshd_settled() { pid_alive "$PIDFILE" || bind_failed; }
wait_for 10 "sshd to listen" sshd_settled || login_failed "sshd wrote no pid file"
! bind_failed || login_failed "port in use? set DRYPIPE_TEST_SSH_PORT"
wait_for 20 "a login as $REMOTE_USER@$HOST:$PORT" login_works ||
  { remote whoami || true; login_failed "timed out"; }

# rsync both ways, through the same pinned host key.
RSH="ssh -F /dev/null -p $PORT -i $CLIENT_KEY -o IdentitiesOnly=yes -o UserKnownHostsFile=$KNOWN_HOSTS -o StrictHostKeyChecking=yes -o BatchMode=yes"
probe=$(mktemp -d "$D/rsync-check.XXXXXX")
head -c 4096 /dev/urandom >"$probe/payload"
rsync -a -e "$RSH" "$probe/payload" "$REMOTE_USER@$HOST:.drypipe-rsync-check" ||
  die "rsync to $REMOTE_USER@$HOST failed"
rsync -a --remove-source-files -e "$RSH" "$REMOTE_USER@$HOST:.drypipe-rsync-check" "$probe/back" ||
  die "rsync from $REMOTE_USER@$HOST failed"
cmp -s "$probe/payload" "$probe/back" || die "rsync round trip changed the file"

log "sshd is up: $REMOTE_USER@$HOST:$PORT (login and rsync both ways checked)"
write_env "$ENV_FILE" \
  "DRYPIPE_TEST_SSH_HOST=$HOST" \
  "DRYPIPE_TEST_SSH_PORT=$PORT" \
  "DRYPIPE_TEST_SSH_USER=$REMOTE_USER" \
  "DRYPIPE_TEST_SSH_KEY=$CLIENT_KEY" \
  "DRYPIPE_TEST_SSH_KNOWN_HOSTS=$KNOWN_HOSTS"
