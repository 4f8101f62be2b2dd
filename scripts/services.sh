#!/usr/bin/env bash
# Real services for the test suite, on loopback only.
#
#   scripts/services.sh start  [docker|zk|all]   start (or reuse) and print the env to use
#   scripts/services.sh stop   [docker|zk|all]   stop what this tool started, remove temp state
#   scripts/services.sh status [docker|zk|all]   exit 0 only if every named service answers
#   scripts/services.sh env    [docker|zk|all]   print `export VAR=...` lines for running services
#
# docker: a private dockerd (--storage-driver vfs) on unix:///run/mesos-test/docker.sock with its
#         own data root (/var/lib/mesos-test-docker) and exec root; it never touches a system
#         dockerd. On start the local images mesos-test/busybox:latest and mesos-test/httpd:latest
#         are imported (`docker import` of a busybox-static root fs) when missing, and a fresh
#         daemon is self-checked: the httpd image runs with -p 127.0.0.1:<port>:80 and GET /
#         must return the test page.
# zk:     ZooKeeper (Debian package) standalone on 127.0.0.1, port 2181 if free, else a free one;
#         data under a temp dir; admin server off.
#
# Ownership. A service started by hand belongs to the developer and test runs never stop it.
# `scripts/test` sets MESOS_TEST_OWNER=scripts/test:<pid>:<time>; each test run that starts or
# reuses a test-run service is recorded as a holder, and its `stop` only stops the service when no
# other live holder remains (so two concurrent test runs do not pull it from under each other).
# Starting by hand a service that test runs hold turns it into a hand-started one.
# A plain `stop` by hand stops the service whoever started it.
#
# Everything is bounded in time. State lives in /run/mesos-test (override: MESOS_TEST_RUN_DIR).
# Functions are called indirectly ("${s}_start_locked").
# shellcheck disable=SC2317
set -euo pipefail

RUN_DIR=${MESOS_TEST_RUN_DIR:-/run/mesos-test}
DOCKER_SOCK="$RUN_DIR/docker.sock"
DOCKER_HOST_URL="unix://$DOCKER_SOCK"
DOCKER_PIDFILE="$RUN_DIR/docker.pid"
DOCKER_EXEC_ROOT="$RUN_DIR/docker-exec"
DOCKER_OWNER_FILE="$RUN_DIR/docker.owner"
DOCKER_LOG="$RUN_DIR/dockerd.log"
DOCKER_DATA_ROOT=${MESOS_TEST_DOCKER_DATA_ROOT:-/var/lib/mesos-test-docker}
# The daemon's default "bridge" network uses its own Linux bridge, so it never collides with a
# system dockerd's docker0. Without `ip` (iproute2) dockerd falls back to docker0.
DOCKER_BRIDGE=${MESOS_TEST_DOCKER_BRIDGE:-mesos-test0}
DOCKER_BRIDGE_CIDR=${MESOS_TEST_DOCKER_BRIDGE_CIDR:-172.31.254.1/24}
BUSYBOX_IMAGE=mesos-test/busybox:latest
HTTPD_IMAGE=mesos-test/httpd:latest
# Bump when the image contents change: images carrying another revision are re-imported.
IMAGE_REV=1

ZK_DIR="$RUN_DIR/zk"
ZK_PIDFILE="$ZK_DIR/zk.pid"
ZK_PORTFILE="$ZK_DIR/port"
ZK_OWNER_FILE="$ZK_DIR/owner"
ZK_LOG="$ZK_DIR/zookeeper.log"

OWNER=${MESOS_TEST_OWNER:-manual}

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

mkdir -p "$RUN_DIR" "$ZK_DIR"

# Serialises start/stop of one service across concurrent callers (bounded wait).
with_lock() {
    local name=$1
    shift
    exec {lock_fd}>"$RUN_DIR/$name.lock"
    if ! flock -w 180 "$lock_fd"; then
        die "timed out waiting for $RUN_DIR/$name.lock"
    fi
    "$@"
    local rc=$?
    flock -u "$lock_fd"
    exec {lock_fd}>&-
    return "$rc"
}

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# Holder files: one line "manual", or one token per line for the test runs using the service.
# holder_add FILE: records this caller (a hand start turns the file into "manual").
holder_add() {
    local file=$1
    if [[ $OWNER == manual ]]; then
        local before
        before=$(read_file "$file")
        if [[ $before != manual ]]; then
            echo manual >"$file"
            [[ -z $before ]] || log "now marked as started by hand: test runs will leave it up"
        fi
        return 0
    fi
    [[ $(read_file "$file") == manual ]] && return 0
    grep -qxF "$OWNER" "$file" 2>/dev/null || echo "$OWNER" >>"$file"
}

# holder_release FILE: drops this caller and holders whose process is gone; succeeds when the
# service should now be stopped (hand stop, or no holder left).
holder_release() {
    local file=$1 tok pid keep=()
    [[ $OWNER == manual ]] && return 0
    [[ $(read_file "$file") == manual ]] && return 1
    while IFS= read -r tok; do
        [[ -z $tok || $tok == "$OWNER" ]] && continue
        pid=$(cut -d: -f2 <<<"$tok")
        if [[ $pid =~ ^[0-9]+$ ]] && ! pid_alive "$pid"; then
            continue
        fi
        keep+=("$tok")
    done < <(read_file "$file")
    if ((${#keep[@]})); then
        printf '%s\n' "${keep[@]}" >"$file"
        log "still used by: ${keep[*]}; leaving it up"
        return 1
    fi
    return 0
}

holders() { read_file "$1" | paste -sd, -; }

read_file() { if [[ -f $1 ]]; then cat "$1" 2>/dev/null || true; fi; }

# Waits up to $1 seconds for pid $2 to exit; then SIGKILL.
stop_pid() {
    local timeout=$1 pid=$2 i
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 5; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.2
    done
    log "pid $pid did not exit after ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
}

free_port() {
    # Prints $1 if it is free on 127.0.0.1, else a free ephemeral port.
    python3 - "$1" <<'PY'
import socket, sys
want = int(sys.argv[1])
def try_bind(p):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do; TIME_WAIT is free
    try:
        s.bind(("127.0.0.1", p))
        return s.getsockname()[1]
    except OSError:
        return None
    finally:
        s.close()
print(try_bind(want) or try_bind(0))
PY
}

# ---------------------------------------------------------------- docker

docker_cli() { DOCKER_HOST=$DOCKER_HOST_URL timeout 60 docker "$@"; }

docker_up() {
    [[ -S $DOCKER_SOCK ]] && DOCKER_HOST=$DOCKER_HOST_URL timeout 10 docker info >/dev/null 2>&1
}

docker_image_ok() {
    local rev
    rev=$(docker_cli image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$1" 2>/dev/null |
        sed -n 's/^MESOS_TEST_IMAGE_REV=//p') || true
    [[ $rev == "$IMAGE_REV" ]]
}

# Builds a busybox root fs (static busybox + applet symlinks + minimal /etc) and imports it twice.
docker_import_images() {
    if docker_image_ok "$BUSYBOX_IMAGE" && docker_image_ok "$HTTPD_IMAGE"; then
        return 0
    fi
    local busybox root
    busybox=$(command -v busybox || true)
    [[ -x /bin/busybox ]] && busybox=/bin/busybox
    [[ -n $busybox ]] || die "busybox not found (install busybox-static)"
    root=$(mktemp -d /tmp/mesos-test-rootfs.XXXXXX)
    if ! docker_build_rootfs "$busybox" "$root"; then
        rm -rf "$root"
        die "could not build the busybox root fs (a static busybox is needed: install busybox-static)"
    fi
    log "importing $BUSYBOX_IMAGE and $HTTPD_IMAGE"
    local rc=0
    tar -C "$root" -c . | docker_cli import \
        --change "ENV MESOS_TEST_IMAGE_REV=$IMAGE_REV" \
        --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["sh"]' \
        - "$BUSYBOX_IMAGE" >/dev/null || rc=1
    tar -C "$root" -c . | docker_cli import \
        --change "ENV MESOS_TEST_IMAGE_REV=$IMAGE_REV" \
        --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'WORKDIR /www' \
        --change 'EXPOSE 80' \
        --change 'CMD ["httpd","-f","-p","80","-h","/www"]' \
        - "$HTTPD_IMAGE" >/dev/null || rc=1
    rm -rf "$root"
    return "$rc"
}

docker_build_rootfs() {
    local busybox=$1 root=$2
    chmod 755 "$root"
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev,var/log,www}
    chmod 1777 "$root/tmp"
    cp "$busybox" "$root/bin/busybox"
    chroot "$root" /bin/busybox --install -s || return 1
    cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
    cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
    echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
    local page='<html><body><h1>mesos-test-httpd</h1></body></html>'
    echo "$page" >"$root/www/index.html"
    # Also at / so that `httpd -f -p 80` serves the page whatever its working directory.
    echo "$page" >"$root/index.html"
}

# BRIDGE networking with a port mapping on loopback, end to end.
docker_selfcheck() {
    local port name ok=0 body i
    port=$(free_port 18080)
    name="mesos-test-selfcheck-$$"
    docker_cli rm -f "$name" >/dev/null 2>&1 || true
    if ! docker_cli run -d --name "$name" -p "127.0.0.1:$port:80" "$HTTPD_IMAGE" >/dev/null; then
        docker_cli rm -f "$name" >/dev/null 2>&1 || true
        return 1
    fi
    for ((i = 0; i < 40; i++)); do
        body=$(curl -fsS -m 2 "http://127.0.0.1:$port/" 2>/dev/null || true)
        if [[ $body == *mesos-test-httpd* ]]; then
            ok=1
            break
        fi
        sleep 0.25
    done
    docker_cli rm -f "$name" >/dev/null 2>&1 || true
    [[ $ok == 1 ]]
}

# Creates (or repairs) the bridge; prints the dockerd flag to use it, nothing on failure.
docker_bridge_setup() {
    command -v ip >/dev/null || return 0
    if ! ip link show "$DOCKER_BRIDGE" >/dev/null 2>&1; then
        ip link add "$DOCKER_BRIDGE" type bridge >&2 || return 0
    fi
    if ! ip -4 addr show dev "$DOCKER_BRIDGE" | grep -q "inet $DOCKER_BRIDGE_CIDR "; then
        ip -4 addr flush dev "$DOCKER_BRIDGE" >&2 || true
        ip addr add "$DOCKER_BRIDGE_CIDR" dev "$DOCKER_BRIDGE" >&2 || return 0
    fi
    ip link set "$DOCKER_BRIDGE" up >&2 || return 0
    echo "--bridge=$DOCKER_BRIDGE"
}

docker_launch() {
    local extra=("$@") pid i bridge_flag
    bridge_flag=$(docker_bridge_setup)
    [[ -n $bridge_flag ]] && extra+=("$bridge_flag")
    mkdir -p "$DOCKER_DATA_ROOT" "$DOCKER_EXEC_ROOT"
    rm -f "$DOCKER_SOCK" "$DOCKER_PIDFILE"
    {
        echo "=== $(date -u '+%F %T') dockerd start (owner $OWNER) ${extra[*]:-}"
    } >>"$DOCKER_LOG"
    # setsid: the daemon must outlive this script and not get the caller's Ctrl-C.
    setsid dockerd \
        --host "$DOCKER_HOST_URL" \
        --storage-driver vfs \
        --data-root "$DOCKER_DATA_ROOT" \
        --exec-root "$DOCKER_EXEC_ROOT" \
        --pidfile "$DOCKER_PIDFILE" \
        "${extra[@]}" \
        </dev/null >>"$DOCKER_LOG" 2>&1 &
    pid=$!
    for ((i = 0; i < 120; i++)); do # 60 s
        if docker_up; then
            return 0
        fi
        if ! pid_alive "$pid"; then
            log "dockerd exited early; last log lines:"
            tail -n 15 "$DOCKER_LOG" >&2 || true
            return 1
        fi
        sleep 0.5
    done
    log "dockerd did not answer within 60s; stopping it"
    stop_pid 20 "$pid"
    return 1
}

docker_start_locked() {
    if docker_up; then
        log "dockerd already running on $DOCKER_SOCK; reusing it"
        holder_add "$DOCKER_OWNER_FILE"
        docker_import_images || die "image import failed"
        return 0
    fi
    command -v dockerd >/dev/null || die "dockerd not found (install docker.io)"
    # A stale daemon (pidfile alive but not answering) is stopped first.
    local stale
    stale=$(read_file "$DOCKER_PIDFILE")
    if pid_alive "$stale"; then
        log "stale dockerd pid $stale does not answer; stopping it"
        stop_pid 30 "$stale"
    fi
    log "starting dockerd (vfs) on $DOCKER_SOCK, log $DOCKER_LOG"
    if ! docker_launch; then
        log "retrying dockerd without iptables management (port mappings then use docker-proxy)"
        docker_launch --iptables=false || die "dockerd failed to start; see $DOCKER_LOG"
    fi
    rm -f "$DOCKER_OWNER_FILE"
    holder_add "$DOCKER_OWNER_FILE"
    docker_import_images || die "image import failed"
    if ! docker_selfcheck; then
        die "dockerd is up but a bridge container with -p 127.0.0.1:<port>:80 did not serve the test page"
    fi
    log "dockerd ready (pid $(read_file "$DOCKER_PIDFILE")); bridge port mapping self-check passed"
}

docker_stop_locked() {
    local pid cpid
    pid=$(read_file "$DOCKER_PIDFILE")
    if pid_alive "$pid" && ! holder_release "$DOCKER_OWNER_FILE"; then
        log "dockerd: not stopped"
        return 0
    fi
    cpid=$(read_file "$DOCKER_EXEC_ROOT/containerd/containerd.pid")
    if pid_alive "$pid" && docker_up; then
        # Everything in this private daemon is test state: remove leftover containers so that
        # shutdown is quick and the vfs data root does not grow run after run (images stay).
        local ids
        ids=$(docker_cli ps -aq 2>/dev/null || true)
        if [[ -n $ids ]]; then
            log "removing $(wc -w <<<"$ids") leftover container(s)"
            # shellcheck disable=SC2086
            docker_cli rm -f $ids >/dev/null 2>&1 || true
        fi
    fi
    if pid_alive "$pid"; then
        log "stopping dockerd pid $pid"
        # dockerd stops its containers (up to 15 s each, in parallel) and its containerd.
        stop_pid 45 "$pid"
    fi
    if pid_alive "$cpid"; then
        stop_pid 10 "$cpid"
    fi
    rm -f "$DOCKER_SOCK" "$DOCKER_PIDFILE" "$DOCKER_OWNER_FILE"
    if command -v ip >/dev/null && ip link show "$DOCKER_BRIDGE" >/dev/null 2>&1; then
        ip link del "$DOCKER_BRIDGE" 2>/dev/null || true
    fi
    # The exec root holds only runtime state; mounts under it are gone once dockerd has exited.
    if ! grep -q " $DOCKER_EXEC_ROOT" /proc/mounts; then
        rm -rf "$DOCKER_EXEC_ROOT"
    fi
}

docker_env() {
    echo "export MESOS_TEST_DOCKER=1"
    echo "export DOCKER_HOST=$DOCKER_HOST_URL"
    echo "export MESOS_TEST_BUSYBOX_IMAGE=$BUSYBOX_IMAGE"
    echo "export MESOS_TEST_HTTPD_IMAGE=$HTTPD_IMAGE"
}

# ---------------------------------------------------------------- zookeeper

zk_port() { read_file "$ZK_PORTFILE"; }

zk_up() {
    local port
    port=$(zk_port)
    [[ -n $port ]] || return 1
    pid_alive "$(read_file "$ZK_PIDFILE")" || return 1
    local reply
    reply=$(python3 - "$port" <<'PY' 2>/dev/null || true
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.sendall(b"srvr")
s.settimeout(2)
data = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
print(data.decode(errors="replace"))
PY
)
    [[ $reply == *"Mode: standalone"* ]]
}

zk_classpath() {
    local cp=/etc/zookeeper/conf jar
    for jar in /usr/share/java/zookeeper.jar /usr/share/java/zookeeper-jute.jar \
        /usr/share/java/slf4j-api.jar /usr/share/java/slf4j-simple.jar \
        /usr/share/java/log4j-1.2.jar /usr/share/java/slf4j-log4j12.jar \
        /usr/share/java/netty.jar /usr/share/java/jline.jar \
        /usr/share/java/commons-cli.jar /usr/share/java/metrics-core.jar \
        /usr/share/java/jackson-databind.jar /usr/share/java/jackson-core.jar \
        /usr/share/java/jackson-annotations.jar /usr/share/java/snappy-java.jar; do
        [[ -f $jar ]] && cp="$cp:$jar"
    done
    echo "$cp"
}

zk_start_locked() {
    if zk_up; then
        log "ZooKeeper already running on 127.0.0.1:$(zk_port); reusing it"
        holder_add "$ZK_OWNER_FILE"
        return 0
    fi
    command -v java >/dev/null || die "java not found (install zookeeper)"
    [[ -f /usr/share/java/zookeeper.jar ]] || die "/usr/share/java/zookeeper.jar not found (install zookeeper)"
    zk_stop_locked_force
    local port data pid i
    port=$(free_port 2181)
    data=$(mktemp -d /tmp/mesos-test-zk.XXXXXX)
    cat >"$data/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$data/data
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=srvr,ruok,stat,mntr
autopurge.purgeInterval=0
EOF
    mkdir -p "$data/data"
    echo "$data" >"$ZK_DIR/datadir"
    echo "$port" >"$ZK_PORTFILE"
    log "starting ZooKeeper on 127.0.0.1:$port (data $data, log $ZK_LOG)"
    echo "=== $(date -u '+%F %T') zookeeper start (owner $OWNER) port $port" >>"$ZK_LOG"
    setsid java -Xmx256m -XX:+UseSerialGC -Dzookeeper.log.dir="$data" \
        -Dzookeeper.root.logger=INFO,CONSOLE -Dlog4j.configuration=file:/etc/zookeeper/conf/log4j.properties \
        -cp "$(zk_classpath)" org.apache.zookeeper.server.quorum.QuorumPeerMain "$data/zoo.cfg" \
        </dev/null >>"$ZK_LOG" 2>&1 &
    pid=$!
    echo "$pid" >"$ZK_PIDFILE"
    holder_add "$ZK_OWNER_FILE"
    for ((i = 0; i < 120; i++)); do # 60 s
        if zk_up; then
            log "ZooKeeper ready (pid $pid) on 127.0.0.1:$port"
            return 0
        fi
        if ! pid_alive "$pid"; then
            tail -n 20 "$ZK_LOG" >&2 || true
            zk_stop_locked_force
            die "ZooKeeper exited early; see $ZK_LOG"
        fi
        sleep 0.5
    done
    tail -n 20 "$ZK_LOG" >&2 || true
    zk_stop_locked_force
    die "ZooKeeper did not answer 'srvr' within 60s; see $ZK_LOG"
}

zk_stop_locked_force() {
    local pid data
    pid=$(read_file "$ZK_PIDFILE")
    if pid_alive "$pid"; then
        log "stopping ZooKeeper pid $pid"
        stop_pid 15 "$pid"
    fi
    data=$(read_file "$ZK_DIR/datadir")
    if [[ $data == /tmp/mesos-test-zk.* ]]; then
        rm -rf "$data"
    fi
    rm -f "$ZK_PIDFILE" "$ZK_PORTFILE" "$ZK_OWNER_FILE" "$ZK_DIR/datadir"
}

zk_stop_locked() {
    if pid_alive "$(read_file "$ZK_PIDFILE")" && ! holder_release "$ZK_OWNER_FILE"; then
        log "ZooKeeper: not stopped"
        return 0
    fi
    zk_stop_locked_force
}

zk_env() {
    echo "export MESOS_TEST_ZK=127.0.0.1:$(zk_port)"
}

# ---------------------------------------------------------------- main

cmd=${1:-}
what=${2:-all}
case $what in
docker | zk) services=("$what") ;;
all) services=(docker zk) ;;
*) usage ;;
esac

rc=0
case $cmd in
start)
    for s in "${services[@]}"; do
        with_lock "$s" "${s}_start_locked"
    done
    for s in "${services[@]}"; do "${s}_env"; done
    ;;
stop)
    for s in "${services[@]}"; do
        with_lock "$s" "${s}_stop_locked"
    done
    ;;
status)
    for s in "${services[@]}"; do
        if "${s}_up"; then
            case $s in
            docker) echo "docker: up on $DOCKER_HOST_URL (pid $(read_file "$DOCKER_PIDFILE"), held by $(holders "$DOCKER_OWNER_FILE"))" ;;
            zk) echo "zk: up on 127.0.0.1:$(zk_port) (pid $(read_file "$ZK_PIDFILE"), held by $(holders "$ZK_OWNER_FILE"))" ;;
            esac
        else
            echo "$s: down"
            rc=1
        fi
    done
    ;;
env)
    for s in "${services[@]}"; do
        if "${s}_up"; then "${s}_env"; fi
    done
    ;;
*) usage ;;
esac
exit $rc
