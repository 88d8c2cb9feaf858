# Shared helpers for scripts/run and scripts/test. Sourced, never run.

# Reuse one cargo target directory across runs on a machine (so CI does not rebuild from zero),
# falling back to ./target where the shared cache is not writable.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  if mkdir -p /var/cache/clubpulse/target 2>/dev/null && [ -w /var/cache/clubpulse/target ]; then
    export CARGO_TARGET_DIR=/var/cache/clubpulse/target
  fi
fi

PG_BIN="${CLUBPULSE_PG_BIN_DIR:-/usr/lib/postgresql/15/bin}"

# A free loopback port between 20000 and 50000 whose neighbour 10000 above is free too (Redis
# Cluster's bus port is the client port + 10000).
free_port() {
  python3 - <<'PY'
import random, socket
def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
while True:
    port = random.randint(20000, 50000)
    if free(port) and free(port + 10000):
        print(port)
        break
PY
}

# Runs a command as the `postgres` user when we are root (PostgreSQL refuses to run as root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "timed out waiting for $what" >&2; return 1; fi
    sleep 0.2
  done
}
