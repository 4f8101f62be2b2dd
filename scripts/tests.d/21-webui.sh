#!/usr/bin/env bash
# The master's web UI in a real browser: target/debug/mesos-local runs one task (launched by a
# tiny stdlib-only v1 scheduler below), then headless Chromium renders http://127.0.0.1:PORT/
# and the rendered DOM must show the agent and the running task.
set -euo pipefail

ROOT=${MESOS_REPO_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
CHROMIUM=${MESOS_TEST_CHROMIUM:-}
PYTHON=${MESOS_TEST_PYTHON:-$(command -v python3 || true)}
if [[ -z $CHROMIUM || -z $PYTHON ]]; then
    if [[ ${MESOS_TEST_STRICT:-} == 1 ]]; then
        echo "webui: 0 passed, 1 failed (MESOS_TEST_CHROMIUM or a Python is missing under strict mode)"
        exit 1
    fi
    echo "webui: skipped (MESOS_TEST_CHROMIUM unset)"
    exit 0
fi
BIN=$ROOT/target/debug/mesos-local
# Build (a no-op when fresh) so the binary matches the tree, web UI assets included.
(cd "$ROOT" && cargo build -q -p shells --bin mesos-local)

port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
work=$(mktemp -d)
pid=
fw=
cleanup() {
    [[ -n $fw ]] && kill "$fw" 2>/dev/null || true
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "--- mesos-local log (last 40 lines)" >&2
    tail -40 "$work/local.log" >&2 || true
    echo "webui: 0 passed, 1 failed ($*)"
    exit 1
}

"$BIN" --master-port "$port" --work-dir "$work/cluster" --containerizers mesos >"$work/out" 2>"$work/local.log" &
pid=$!
for _ in $(seq 1 300); do
    grep -q "ready at" "$work/out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
grep -q "ready at" "$work/out" || fail "mesos-local did not become ready"

# A minimal v1 scheduler: subscribe, launch one long task, wait for TASK_RUNNING, hold on.
cat >"$work/fw.py" <<'PY'
import http.client, json, sys, time
host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sub = http.client.HTTPConnection(host, port, timeout=60)
sub.request("POST", "/api/v1/scheduler", json.dumps({"type": "SUBSCRIBE", "subscribe": {
    "framework_info": {"user": "root", "name": "webui-check", "failover_timeout": 300.0}}}),
    {"Content-Type": "application/json", "Accept": "application/json"})
resp = sub.getresponse()
assert resp.status == 200, resp.status
stream_id = resp.getheader("Mesos-Stream-Id")
calls = http.client.HTTPConnection(host, port, timeout=60)
def call(body):
    calls.request("POST", "/api/v1/scheduler", json.dumps(body),
                  {"Content-Type": "application/json", "Mesos-Stream-Id": stream_id})
    r = calls.getresponse(); r.read()
    assert r.status == 202, (r.status, body["type"])
def events():
    while True:
        line = b""
        while not line.endswith(b"\n"):
            c = resp.read(1)
            if not c:
                return
            line += c
        yield json.loads(resp.read(int(line)))
fid = None
launched = False
for e in events():
    if e["type"] == "SUBSCRIBED":
        fid = e["subscribed"]["framework_id"]
    elif e["type"] == "OFFERS":
        for o in e["offers"]["offers"]:
            if launched:
                call({"type": "DECLINE", "framework_id": fid, "decline": {"offer_ids": [o["id"]],
                      "filters": {"refuse_seconds": 3600}}})
                continue
            launched = True
            call({"type": "ACCEPT", "framework_id": fid, "accept": {"offer_ids": [o["id"]],
                  "operations": [{"type": "LAUNCH", "launch": {"task_infos": [{
                      "name": "webui-task", "task_id": {"value": "webui-task-1"},
                      "agent_id": o["agent_id"],
                      "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
                      "command": {"value": "sleep 300"}}]}}]}})
    elif e["type"] == "UPDATE":
        s = e["update"]["status"]
        if "uuid" in s:
            call({"type": "ACKNOWLEDGE", "framework_id": fid, "acknowledge": {
                "agent_id": s["agent_id"], "task_id": s["task_id"], "uuid": s["uuid"]}})
        if s["state"] == "TASK_RUNNING":
            with open(out, "w") as f:
                f.write(s["agent_id"]["value"])
        elif s["state"] != "TASK_STARTING":
            print("unexpected update", s, file=sys.stderr)
            sys.exit(1)
PY
"$PYTHON" "$work/fw.py" 127.0.0.1 "$port" "$work/agent_id" 2>"$work/fw.log" &
fw=$!
for _ in $(seq 1 300); do
    [[ -s $work/agent_id ]] && break
    kill -0 "$fw" 2>/dev/null || break
    sleep 0.1
done
[[ -s $work/agent_id ]] || { cat "$work/fw.log" >&2; fail "the task did not reach TASK_RUNNING"; }
agent_id=$(cat "$work/agent_id")

timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$work/chromium" \
    --virtual-time-budget=5000 --dump-dom "http://127.0.0.1:$port/" >"$work/dom.html" 2>"$work/chromium.log" ||
    { tail -20 "$work/chromium.log" >&2; fail "chromium failed"; }

missing=()
grep -q -- "$agent_id" "$work/dom.html" || missing+=("agent id $agent_id")
grep -q "webui-task-1" "$work/dom.html" || missing+=("task id webui-task-1")
grep -q "TASK_RUNNING" "$work/dom.html" || missing+=("TASK_RUNNING")
grep -q "webui-check" "$work/dom.html" || missing+=("framework name")
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "--- rendered DOM (first 60 lines)" >&2
    head -60 "$work/dom.html" >&2
    fail "not in the rendered page: ${missing[*]}"
fi
echo "webui: 1 passed, 0 failed"
