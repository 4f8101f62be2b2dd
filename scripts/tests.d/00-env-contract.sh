#!/usr/bin/env bash
# Checks the test environment contract that scripts/test promises (scripts/tests.d/README.md):
# each exported service really works. Unset variables skip their check, except under
# MESOS_TEST_STRICT=1 where every one must be set (MESOS_SHARED_DIR is optional either way).
set -euo pipefail

fail=0
checked=()
problem() {
    echo "env-contract: FAIL: $*" >&2
    fail=1
}
need() {
    if [[ -z ${!1:-} ]]; then
        if [[ ${MESOS_TEST_STRICT:-} == 1 ]]; then
            problem "$1 is unset under strict mode"
        else
            echo "env-contract: $1 unset; skipping its check"
        fi
        return 1
    fi
}

name="mesos-test-contract-$$"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [[ -n ${DOCKER_HOST:-} ]]; then
        timeout 30 docker rm -f "$name" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

# Docker: busybox runs a command; httpd serves its page through a BRIDGE port mapping on loopback.
if need MESOS_TEST_DOCKER; then
    [[ ${DOCKER_HOST:-} == unix:///run/mesos-test/docker.sock ]] || problem "DOCKER_HOST is '${DOCKER_HOST:-}'"
    out=$(timeout 60 docker run --rm --network none "${MESOS_TEST_BUSYBOX_IMAGE:?}" sh -c 'echo busybox-ok') ||
        problem "docker run $MESOS_TEST_BUSYBOX_IMAGE failed"
    [[ ${out:-} == busybox-ok ]] || problem "busybox image printed '${out:-}'"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    if timeout 60 docker run -d --name "$name" -p "127.0.0.1:$port:80" "${MESOS_TEST_HTTPD_IMAGE:?}" >/dev/null; then
        body=""
        for _ in $(seq 1 40); do
            body=$(curl -fsS -m 2 "http://127.0.0.1:$port/" 2>/dev/null) && break
            sleep 0.25
        done
        [[ $body == *mesos-test-httpd* ]] || problem "GET http://127.0.0.1:$port/ on $MESOS_TEST_HTTPD_IMAGE returned '$body'"
    else
        problem "docker run -p 127.0.0.1:$port:80 $MESOS_TEST_HTTPD_IMAGE failed"
    fi
    checked+=(docker)
fi

# ZooKeeper: standalone, answering four-letter words on loopback.
if need MESOS_TEST_ZK; then
    [[ $MESOS_TEST_ZK == 127.0.0.1:* ]] || problem "MESOS_TEST_ZK is not on 127.0.0.1: $MESOS_TEST_ZK"
    reply=$(python3 - "${MESOS_TEST_ZK##*:}" <<'PY' || true
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"ruok")
s.settimeout(5)
print(s.recv(64).decode())
PY
)
    [[ $reply == imok ]] || problem "ZooKeeper at $MESOS_TEST_ZK answered '$reply' to ruok"
    checked+=(zk)
fi

# LXC tools present (scripts/test already created, started and destroyed a container).
if need MESOS_TEST_LXC; then
    command -v lxc-create >/dev/null || problem "MESOS_TEST_LXC=1 but lxc-create is missing"
    checked+=(lxc)
fi

# Python clients.
if need MESOS_TEST_PYTHON; then
    "$MESOS_TEST_PYTHON" - <<'PY' || problem "$MESOS_TEST_PYTHON cannot import pymesos/marathon"
import collections, collections.abc
from importlib.metadata import version
assert version("pymesos") == "0.3.15"
assert version("marathon") == "0.13.0"
from pymesos import MesosSchedulerDriver, Scheduler  # noqa: F401
if not hasattr(collections, "Iterable"):
    collections.Iterable = collections.abc.Iterable
from marathon import MarathonClient  # noqa: F401
PY
    checked+=(python)
fi

if need MESOS_TEST_CHROMIUM; then
    timeout 60 "$MESOS_TEST_CHROMIUM" --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1 ||
        problem "$MESOS_TEST_CHROMIUM --version failed"
    checked+=(chromium)
fi

# ../shared is optional (a plain clone has none): checked only when given.
if [[ -n ${MESOS_SHARED_DIR:-} ]]; then
    [[ -f $MESOS_SHARED_DIR/clients/marathon_client_check.py ]] ||
        problem "MESOS_SHARED_DIR=$MESOS_SHARED_DIR has no clients/marathon_client_check.py"
    checked+=(shared)
fi

# The repository's own outside clients (they replace ../shared's in a plain clone).
for f in scripts/clients/pymesos_framework.py \
    scripts/clients/nginxgmg.json scripts/setup_venv.sh; do
    [[ -f ${MESOS_REPO_ROOT:-.}/$f ]] || problem "$f is missing from the repository"
done

if [[ $fail == 0 ]]; then
    echo "env-contract: ok (${checked[*]:-nothing checked})"
else
    echo "env-contract: FAILED" >&2
fi
exit "$fail"
