#!/usr/bin/env bash
# Side-by-side change-feed peer benchmark (issue 8): PostgreSQL 15 logical
# decoding (../shared/peers/run_pg.py), Redis 7 Streams with AOF `always`
# (../shared/peers/run_redis.py --fsync always) and Tributary
# (bench/peers/run_tributary.py), round-robin in ONE run, one repetition per
# invocation (as ../shared/peers/run_all.sh does), then one merged table set
# (../shared/peers/summarize.py).
#
# Usage (from anywhere; Debian bookworm, as root for the package step):
#   bench/peers/run_side_by_side.sh [system ...]
#       systems: pg redis-always tributary (default, in this order), also
#                redis-everysec
#   ROUNDS=3 WAIT_IDLE_MAX=120 bench/peers/run_side_by_side.sh      # full size
#   CDC_N=2000 CDC_SINGLE=200 bench/peers/run_side_by_side.sh       # smoke, ~30 s once set up
#
# Environment:
#   ROUNDS=N          rounds (default 1); each round = one repetition of each system
#   WAIT_IDLE_MAX=N   before each invocation wait up to N s until the rest of the
#                     machine uses < 30% CPU (default 0 = don't wait)
#   MAX_FOREIGN=PCT   pass --max-foreign PCT to summarize.py (leave out repetitions
#                     during which other tenants used > PCT % CPU)
#   CDC_*             the harness' parameters (CDC_N, CDC_SINGLE, CDC_BATCH, ...),
#                     passed through to every system; CDC_REPEATS and CDC_OUT are set
#                     here (1, and <run dir>/<system>-round<r>.json)
#   CDC_TRIBUTARY_*   run_tributary.py's own settings (WAIT_MS, DURABILITY, LOG_DIR)
#   TRIBUTARY_BIN     use this binary (no build); default target/release/tributary,
#                     built with `cargo build --release -p tributary-cli` when missing
#                     or older than the sources (SKIP_BUILD=1: never build)
#   PGBIN             PostgreSQL 15 bin dir (default /usr/lib/postgresql/15/bin, where
#                     run_pg.py looks); REDIS_SERVER (default /usr/bin/redis-server)
#   PEERS_DIR         the shared harness (default ../shared/peers from the repo root;
#                     read only: nothing is written there)
#   PEERS_VENV        venv for the peers' client libraries (default target/peers-venv)
#   SKIP_SETUP=1      skip the package/venv checks
#
# Results: target/peers-results/<timestamp>/ (raw JSON + one log per invocation +
# summary.md). Ctrl-C stops the run (the current invocation stops its servers).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PEERS=$(cd "${PEERS_DIR:-$REPO/../shared/peers}" && pwd)
VENV=${PEERS_VENV:-$REPO/target/peers-venv}
PY=$VENV/bin/python
ROUNDS=${ROUNDS:-1}
SYSTEMS=("$@")
[ ${#SYSTEMS[@]} -eq 0 ] && SYSTEMS=(pg redis-always tributary)
export PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export REDIS_SERVER=${REDIS_SERVER:-/usr/bin/redis-server}
# Importing workload.py must not leave a __pycache__ in the (read-only for us)
# shared directory.
export PYTHONDONTWRITEBYTECODE=1

need_pg=0; need_redis=0; need_trib=0
for s in "${SYSTEMS[@]}"; do
  case $s in
    pg) need_pg=1 ;;
    redis-always|redis-everysec) need_redis=1 ;;
    tributary) need_trib=1 ;;
    *) echo "unknown system '$s' (known: pg redis-always redis-everysec tributary)" >&2; exit 2 ;;
  esac
done

log() { echo "[side-by-side] $*"; }

# ---------------------------------------------------------------------------
# 1. packages + venv
# ---------------------------------------------------------------------------
pg_ok() { [ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/initdb" ] &&
          "$PGBIN/postgres" --version | grep -q ' 15\.'; }
wal2json_ok() {
  local lib
  lib=$("$PGBIN/pg_config" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)
  [ -e "$lib/wal2json.so" ]
}
apt_install() {
  log "installing Debian packages: $*"
  if [ "$(id -u)" -ne 0 ]; then
    echo "need root to install: apt-get install -y --no-install-recommends $*" >&2
    exit 1
  fi
  apt-get update
  # policy-rc.d or not: the packages' own services are not used by the harness
  # (random free ports, own data dirs under /tmp).
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

if [ "${SKIP_SETUP:-0}" != 1 ]; then
  pkgs=()
  if [ $need_pg = 1 ]; then
    # run_pg.py runs $PGBIN/{initdb,postgres} (default /usr/lib/postgresql/15/bin,
    # the Debian layout; /usr/local/bin/{postgres,pg_ctl} here are links into it)
    # as the `postgres` user, and needs wal2json in that server's pkglibdir.
    pg_ok && getent passwd postgres >/dev/null || pkgs+=(postgresql-15)
    wal2json_ok || pkgs+=(postgresql-15-wal2json)
  fi
  [ $need_redis = 1 ] && { [ -x "$REDIS_SERVER" ] || pkgs+=(redis-server); }
  command -v strace >/dev/null || pkgs+=(strace)   # for ../shared/peers/verify_fsync.py
  if [ ! -x "$PY" ] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    pkgs+=(python3-venv)    # Debian's python3 has no ensurepip without it
  fi
  [ ${#pkgs[@]} -eq 0 ] || apt_install "${pkgs[@]}"
  if [ $need_pg = 1 ]; then
    pg_ok || { echo "no PostgreSQL 15 at PGBIN=$PGBIN" >&2; exit 1; }
    wal2json_ok || { echo "wal2json.so missing for $PGBIN/postgres" >&2; exit 1; }
  fi
  if [ $need_redis = 1 ] && [ ! -x "$REDIS_SERVER" ]; then
    echo "no redis-server at REDIS_SERVER=$REDIS_SERVER" >&2; exit 1
  fi

  if [ ! -x "$PY" ]; then
    log "creating venv $VENV"
    python3 -m venv "$VENV"
  fi
  if ! "$PY" -c 'import psycopg, psycopg2, redis, hiredis' 2>/dev/null; then
    log "installing the peers' client libraries into $VENV"
    "$PY" -m pip install --quiet 'psycopg[binary]' psycopg2-binary redis hiredis
  fi
fi
[ -x "$PY" ] || { echo "no venv python at $PY (run without SKIP_SETUP=1)" >&2; exit 1; }

# ---------------------------------------------------------------------------
# 2. tributary binary
# ---------------------------------------------------------------------------
BIN=${TRIBUTARY_BIN:-$REPO/target/release/tributary}
if [ $need_trib = 1 ] && [ -z "${TRIBUTARY_BIN:-}" ] && [ "${SKIP_BUILD:-0}" != 1 ]; then
  stale=""
  if [ ! -x "$BIN" ]; then
    stale="missing"
  else
    stale=$(cd "$REPO" && find Cargo.toml Cargo.lock crates \
              \( -path '*/tests' -o -path '*/benches' \) -prune -o \
              -type f \( -name '*.rs' -o -name Cargo.toml \) -newer "$BIN" -print 2>/dev/null |
            head -1)
    [ -z "$stale" ] && [ "$REPO/Cargo.lock" -nt "$BIN" ] && stale=Cargo.lock
  fi
  if [ -n "$stale" ]; then
    [ "$stale" = missing ] && why="missing" || why="$stale is newer"
    log "building $BIN ($why): cargo build --release -p tributary-cli"
    (cd "$REPO" && cargo build --release -p tributary-cli)
  fi
fi
if [ $need_trib = 1 ] && [ ! -x "$BIN" ]; then
  echo "no tributary binary at $BIN" >&2; exit 1
fi

# ---------------------------------------------------------------------------
# 3. round-robin runs
# ---------------------------------------------------------------------------
RUN_DIR=$REPO/target/peers-results/$(date +%Y%m%dT%H%M%S)
mkdir -p "$RUN_DIR"
trap 'echo "[side-by-side] interrupted; partial results in $RUN_DIR" >&2; exit 130' INT TERM

wait_idle() {
  [ "${WAIT_IDLE_MAX:-0}" -gt 0 ] || return 0
  PYTHONPATH="$PEERS" "$PY" - "$WAIT_IDLE_MAX" <<'PYEOF'
import sys, time, workload as W
t_end = time.monotonic() + float(sys.argv[1])
while True:
    b = W.background_cpu(1.0)["busy_pct"]
    if b < 30 or time.monotonic() > t_end:
        print(f"  background CPU busy {b}%" + ("" if b < 30 else " (gave up waiting)"), flush=True)
        break
    time.sleep(9)
PYEOF
}

run_one() {   # system out
  local s=$1 out=$2
  case $s in
    pg)             (cd "$PEERS" && CDC_REPEATS=1 CDC_OUT=$out "$PY" run_pg.py) ;;
    redis-always)   (cd "$PEERS" && CDC_REPEATS=1 CDC_OUT=$out "$PY" run_redis.py --fsync always) ;;
    redis-everysec) (cd "$PEERS" && CDC_REPEATS=1 CDC_OUT=$out "$PY" run_redis.py --fsync everysec) ;;
    tributary)      (cd "$REPO" && CDC_REPEATS=1 CDC_OUT=$out "$PY" bench/peers/run_tributary.py \
                       --peers-dir "$PEERS" --binary "$BIN") ;;
  esac
}

{
  echo "run dir: $RUN_DIR"
  echo "systems: ${SYSTEMS[*]}; rounds: $ROUNDS; started $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "params: $(env | grep -E '^CDC_' | sort | tr '\n' ' ')"
  [ $need_trib = 1 ] && echo "tributary: $BIN (sha256 $(sha256sum "$BIN" | cut -c1-16), built $(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ)), repo $(git -C "$REPO" log -1 --format=%h 2>/dev/null)$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
  echo "peers venv: $PY ($("$PY" --version 2>&1))"
} | tee "$RUN_DIR/run-info.txt"

t0=$SECONDS
failed=()
for r in $(seq 1 "$ROUNDS"); do
  for s in "${SYSTEMS[@]}"; do
    out="$RUN_DIR/$s-round$r.json"
    wait_idle
    echo "=== round $r/$ROUNDS: $s -> $out ($(date +%T))"
    echo "    uptime: $(uptime)"
    t1=$SECONDS
    if ! run_one "$s" "$out" > "$RUN_DIR/$s-round$r.log" 2>&1; then
      echo "  (exit code != 0, see $RUN_DIR/$s-round$r.log)"
      failed+=("$s-round$r")
    fi
    grep -E "rep 0:|stopped|Error" "$RUN_DIR/$s-round$r.log" | head -5 | cut -c1-200 || true
    echo "    ($((SECONDS - t1)) s)"
  done
done
echo "=== all invocations done in $((SECONDS - t0)) s"

# ---------------------------------------------------------------------------
# 4. merged tables (summarize.py groups by the raw files' `system` field:
#    postgres15-wal2json, redis7-streams-aof-always, tributary-fsync)
# ---------------------------------------------------------------------------
if compgen -G "$RUN_DIR/*.json" >/dev/null; then
  python3 "$PEERS/summarize.py" ${MAX_FOREIGN:+--max-foreign "$MAX_FOREIGN"} "$RUN_DIR" |
    tee "$RUN_DIR/summary.md"
else
  echo "no raw results in $RUN_DIR" >&2
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed invocations: ${failed[*]}" >&2
  exit 1
fi
