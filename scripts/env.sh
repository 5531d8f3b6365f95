#!/usr/bin/env bash
# Shared by scripts/up, scripts/test and .ci/run: makes sure the machine has what the
# platform needs (build dependencies, Postgres, the Tansu broker; for the tests also Chromium
# and ChromeDriver) and exports the defaults.
# Anything pointed at an existing service through the environment is used as is.
set -euo pipefail

ETR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ETR_ROOT
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/etr}
export ETR_DATA_DIR=${ETR_DATA_DIR:-$ETR_ROOT/data}
TANSU_VERSION=0.6.0

log() { printf '[etr] %s\n' "$*" >&2; }

ensure_build_deps() {
  local missing=()
  command -v cmake >/dev/null || missing+=(cmake)
  dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || missing+=(libcurl4-openssl-dev)
  dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
  command -v psql >/dev/null || missing+=(postgresql-client)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Debian's Chromium and ChromeDriver, which the browser tests drive headless.
ensure_browser() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (for the browser tests)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# schemathesis from PyPI in its own virtual environment, for the contract-fuzzing test;
# exported as ETR_SCHEMATHESIS.
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  local venv=${ETR_TOOLS_DIR:-$HOME/.cache/etr}/schemathesis-$SCHEMATHESIS_VERSION
  if [ ! -x "$venv/bin/schemathesis" ]; then
    log "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  # Works round a CPython 3.11 bug that ends a run with a "Runtime Error" (see the file).
  local site
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  cp "$ETR_ROOT/scripts/schemathesis/sitecustomize.py" "$site/sitecustomize.py"
  export ETR_SCHEMATHESIS="$venv/bin/schemathesis"
}

ensure_postgres() {
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then return; fi
  case "$DATABASE_URL" in
    *127.0.0.1*|*localhost*) ;;
    *) log "DATABASE_URL points elsewhere and does not answer"; return 1 ;;
  esac
  log "starting the local PostgreSQL server"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && return; sleep 1; done
  log "PostgreSQL did not come up"; return 1
}

broker_answers() {
  local host=${KAFKA_BOOTSTRAP_SERVERS%%,*}
  (exec 3<>"/dev/tcp/${host%:*}/${host##*:}") 2>/dev/null
}

ensure_tansu_binary() {
  if command -v tansu >/dev/null && [ "$(tansu --version 2>/dev/null)" = "tansu $TANSU_VERSION" ]; then return; fi
  log "installing tansu $TANSU_VERSION from crates.io (takes several minutes, once)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql
}

# Starts Tansu with durable libsql storage under $ETR_DATA_DIR/tansu unless a broker answers.
ensure_broker() {
  if broker_answers; then return; fi
  case "$KAFKA_BOOTSTRAP_SERVERS" in
    127.0.0.1:9092|localhost:9092) ;;
    *) log "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS does not answer"; return 1 ;;
  esac
  export PATH="$HOME/.cargo/bin:$PATH"
  ensure_tansu_binary
  mkdir -p "$ETR_DATA_DIR/tansu"
  log "starting tansu (storage: $ETR_DATA_DIR/tansu/tansu.db)"
  (cd "$ETR_DATA_DIR/tansu" && nohup tansu broker \
      --listener-url tcp://127.0.0.1:9092 \
      --advertised-listener-url tcp://127.0.0.1:9092 \
      --storage-engine sqlite://tansu.db >>tansu.log 2>&1 &
   echo $! > tansu.pid)
  for _ in $(seq 1 60); do broker_answers && return; sleep 0.5; done
  log "tansu did not start; see $ETR_DATA_DIR/tansu/tansu.log"; return 1
}

prepare_machine() {
  ensure_build_deps
  ensure_postgres
  ensure_broker
}
