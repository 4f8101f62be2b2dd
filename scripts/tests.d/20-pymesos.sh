#!/usr/bin/env bash
# pymesos 0.3.15 (unchanged, from PyPI) launches 5 tasks against target/debug/mesos-local; every
# task must finish. The framework is this repository's scripts/clients/pymesos_framework.py
# (--strict); when MESOS_SHARED_DIR is set, ../shared's clients/pymesos_framework.py runs too,
# against the same cluster.
set -euo pipefail

ROOT=${MESOS_REPO_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
PYTHON=${MESOS_TEST_PYTHON:-}
if [[ -z $PYTHON ]]; then
    if [[ ${MESOS_TEST_STRICT:-} == 1 ]]; then
        echo "pymesos: 0 passed, 1 failed (MESOS_TEST_PYTHON unset under strict mode)"
        exit 1
    fi
    echo "pymesos: skipped (MESOS_TEST_PYTHON unset)"
    exit 0
fi
BIN=$ROOT/target/debug/mesos-local
# Build (a no-op when fresh) so the binary matches the tree, web UI assets included.
(cd "$ROOT" && cargo build -q -p shells --bin mesos-local)

port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
work=$(mktemp -d)
log=$work/mesos-local.log
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Agents on free ports (--master-port 0 would pick the master's too; pass ours and let agents
# fall back to free ports if ours+1 is taken).
"$BIN" --master-port "$port" --work-dir "$work/cluster" --containerizers mesos >"$work/out" 2>"$log" &
pid=$!
ready=0
for _ in $(seq 1 300); do
    # mesos-local prints its ready line once /master/health answers and the agent registered.
    if grep -q "ready at" "$work/out" 2>/dev/null; then
        ready=1
        break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [[ $ready != 1 ]]; then
    echo "--- mesos-local log" >&2
    tail -50 "$log" >&2 || true
    echo "pymesos: 0 passed, 1 failed (mesos-local did not become ready)"
    exit 1
fi

frameworks=("$ROOT/scripts/clients/pymesos_framework.py")
if [[ -n ${MESOS_SHARED_DIR:-} ]]; then
    [[ -f $MESOS_SHARED_DIR/clients/pymesos_framework.py ]] || {
        echo "pymesos: 0 passed, 1 failed (MESOS_SHARED_DIR=$MESOS_SHARED_DIR has no clients/pymesos_framework.py)"
        exit 1
    }
    frameworks+=("$MESOS_SHARED_DIR/clients/pymesos_framework.py")
fi
for fw in "${frameworks[@]}"; do
    echo "--- $fw"
    set +e
    "$PYTHON" "$fw" "127.0.0.1:$port" 5 --timeout 120 --strict
    rc=$?
    set -e
    if [[ $rc != 0 ]]; then
        echo "--- mesos-local log (last 80 lines)" >&2
        tail -80 "$log" >&2 || true
        echo "pymesos: 0 passed, 1 failed ($fw exit $rc)"
        exit 1
    fi
done

# The cluster must stop on SIGTERM.
kill -TERM "$pid"
for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
    echo "pymesos: 0 passed, 1 failed (mesos-local did not stop on SIGTERM within 30 s)"
    exit 1
fi
pid=
echo "pymesos: ${#frameworks[@]} passed, 0 failed (${frameworks[*]#"$ROOT"/})"
