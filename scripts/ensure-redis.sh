# Sourced by scripts/test and scripts/demo: make sure a Redis answers at $REDIS_URL.
# When none answers, start a private redis-server on a free port (installing it with apt
# when running as root and it is missing) and export REDIS_URL; PPS_PRIVATE_REDIS_PID
# names the process to stop at exit.
: "${REDIS_URL:=redis://localhost:6379/0}"
export REDIS_URL

_redis_answers() {
  "${VENV_PY:-.venv/bin/python}" - "$1" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=1).ping()
PY
}

if _redis_answers "$REDIS_URL"; then
  echo "redis: using $REDIS_URL"
else
  if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "redis: no redis-server found, installing it with apt-get"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null
    else
      echo "redis: nothing answers at $REDIS_URL and redis-server is not installed." >&2
      echo "       install it (sudo apt-get install -y redis-server) or set REDIS_URL." >&2
      exit 1
    fi
  fi
  port=$("${VENV_PY:-.venv/bin/python}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  rdir=$(mktemp -d)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$rdir" \
    --daemonize yes --pidfile "$rdir/redis.pid" --logfile "$rdir/redis.log"
  for _ in $(seq 50); do
    _redis_answers "redis://127.0.0.1:$port/0" && break
    sleep 0.1
  done
  export REDIS_URL="redis://127.0.0.1:$port/0"
  PPS_PRIVATE_REDIS_PID=$(cat "$rdir/redis.pid")
  export PPS_PRIVATE_REDIS_PID
  echo "redis: started a private redis-server at $REDIS_URL (pid $PPS_PRIVATE_REDIS_PID)"
fi
