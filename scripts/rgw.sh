#!/usr/bin/env bash
# A throwaway single-node Ceph RADOS Gateway on 127.0.0.1 for the S3 integration pass.
#
#   scripts/rgw.sh run -- CMD [ARGS...]   start, run CMD with TFS_TEST_S3_* exported, always stop; exit with CMD's status
#   scripts/rgw.sh start                  start and print `export TFS_TEST_S3_...` lines (eval them); state in $RGW_STATE
#   scripts/rgw.sh stop                   stop what `start` started and remove its temp dir
#
# One mon and one OSD (memstore: everything in RAM) and radosgw, all in a temp dir, no cephx. Needs the Debian
# packages radosgw, ceph-mon and ceph-osd. Environment: RGW_PORT (7480), RGW_STATE (state file for start/stop),
# RGW_START_TIMEOUT (seconds, 60), RGW_KEEP_DIR=1 (keep the temp dir on stop, for post-mortems).
set -Eeuo pipefail

RGW_PORT=${RGW_PORT:-7480}
RGW_STATE=${RGW_STATE:-${TMPDIR:-/tmp}/tfs-rgw.state}
RGW_START_TIMEOUT=${RGW_START_TIMEOUT:-60}
ACCESS_KEY=tfsrgwaccesskey
SECRET_KEY=tfsrgwsecretkey0123456789
REGION=us-east-1
DIR=""

log() { printf 'rgw.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }

usage() {
    sed -n '2,10s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 30000))
        port_open "$port" || { echo "$port"; return; }
    done
    die "no free loopback port found"
}

check_tools() {
    local missing=()
    for tool in ceph ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) || die "missing ${missing[*]}: apt-get install --no-install-recommends radosgw ceph-mon ceph-osd"
}

write_conf() {
    local fsid=$1 mon_v2=$2 mon_v1=$3
    cat >"$DIR/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
keyring = $DIR/keyring
run dir = $DIR/run
crash dir = $DIR/crash
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
# Each pool radosgw creates waits for a paxos round: the default 1 s makes the cold start ~13 s.
paxos propose interval = 0.05
mon data avail warn = 1
mon data avail crit = 0

[mon]
mon data = $DIR/mon/\$name

[osd]
osd data = $DIR/osd/\$name
osd objectstore = memstore
memstore device bytes = 8589934592
osd crush update on start = true

[client]
# radosgw otherwise insists on secure mode with the mon and never reaches it (no cephx here).
ms mon client mode = crc

[client.rgw.tfs]
ms mon client mode = crc
# tcp_nodelay: ~2.5 ms per request instead of ~48 ms (Nagle against delayed ACKs).
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw enable usage log = false
EOF
}

start_daemon() {
    local name=$1; shift
    "$@" >"$DIR/log/$name.out" 2>&1 &
    echo "$!" >>"$DIR/pids"
}

ceph_cli() { timeout 30 ceph -c "$DIR/ceph.conf" --connect-timeout 10 "$@"; }

wait_for() {
    local what=$1 deadline=$2; shift 2
    until "$@" >/dev/null 2>&1; do
        if (($(now_ms) > deadline)); then
            log "timed out waiting for $what"
            return 1
        fi
        check_alive || return 1
        sleep 0.1
    done
}

running() { # a zombie (its parent has not reaped it yet) is not running
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) } # fields after "pid (comm) ": the state comes first
    [[ ${stat:0:1} != Z ]]
}

check_alive() {
    local pid
    while read -r pid; do
        running "$pid" || { log "a Ceph daemon (pid $pid) exited"; return 1; }
    done <"$DIR/pids"
}

s3_answers() {
    local status
    exec 3<>"/dev/tcp/127.0.0.1/$RGW_PORT" || return 1
    printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$RGW_PORT" >&3
    read -r -t 2 status <&3 || { exec 3<&-; return 1; }
    exec 3<&-
    [[ $status == "HTTP/1.1 200"* ]]
}

osd_up() { ceph_cli osd dump 2>/dev/null | grep -q '^osd\.0 up'; }

diagnose() {
    [[ -n $DIR && -d $DIR ]] || return 0
    log "diagnostics from $DIR:"
    local file
    for file in "$DIR"/log/*; do
        [[ -s $file ]] || continue
        printf '\n----- %s (last 25 lines) -----\n' "${file#"$DIR"/}" >&2
        tail -n 25 "$file" >&2
    done
    if [[ -f $DIR/ceph.conf ]]; then
        printf '\n----- ceph -s -----\n' >&2
        timeout 8 ceph -c "$DIR/ceph.conf" --connect-timeout 5 -s >&2 2>&1 || true
    fi
}

start_cluster() {
    check_tools
    port_open "$RGW_PORT" && die "127.0.0.1:$RGW_PORT is already in use (set RGW_PORT to another port)"
    local t0 deadline fsid osd_uuid mon_v2 mon_v1
    t0=$(now_ms)
    deadline=$((t0 + RGW_START_TIMEOUT * 1000))
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/tfs-rgw.XXXXXX")
    mkdir -p "$DIR"/{log,run,crash,mon/mon.a,osd/osd.0}
    : >"$DIR/pids"
    fsid=$(</proc/sys/kernel/random/uuid)
    osd_uuid=$(</proc/sys/kernel/random/uuid)
    mon_v2=$(free_port)
    mon_v1=$(free_port)
    write_conf "$fsid" "$mon_v2" "$mon_v1"
    export CEPH_CONF=$DIR/ceph.conf

    ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool "$DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
        --cap mgr 'allow *' >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]" \
        "$DIR/monmap" >/dev/null
    ceph-mon -c "$CEPH_CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" \
        >"$DIR/log/mon-mkfs.out" 2>&1 || { log "ceph-mon --mkfs failed"; return 1; }
    start_daemon mon.a ceph-mon -c "$CEPH_CONF" -i a -f
    wait_for "the mon" "$deadline" ceph_cli mon stat || return 1

    ceph_cli osd new "$osd_uuid" >/dev/null
    ceph-osd -c "$CEPH_CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$DIR/log/osd-mkfs.out" 2>&1 \
        || { log "ceph-osd --mkfs failed"; return 1; }
    start_daemon osd.0 ceph-osd -c "$CEPH_CONF" -i 0 -f
    wait_for "the OSD" "$deadline" osd_up || return 1

    start_daemon rgw radosgw -c "$CEPH_CONF" -n client.rgw.tfs -f
    wait_for "radosgw on 127.0.0.1:$RGW_PORT" "$deadline" s3_answers || return 1
    timeout 30 radosgw-admin -c "$CEPH_CONF" user create --uid=tfs --display-name="tfs-gitops tests" \
        --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" >"$DIR/log/user-create.out" 2>&1 \
        || { log "radosgw-admin user create failed"; return 1; }
    log "Ceph RGW up on http://127.0.0.1:$RGW_PORT in $(( $(now_ms) - t0 )) ms (dir $DIR)"
}

stop_cluster() {
    [[ -n $DIR && -d $DIR ]] || return 0
    local pid pids=()
    if [[ -f $DIR/pids ]]; then
        mapfile -t pids <"$DIR/pids"
    fi
    # Everything lives in RAM and in $DIR, so there is nothing to shut down cleanly: SIGTERM costs ~2 s per
    # daemon for an orderly shutdown that we would throw away.
    {
        for pid in "${pids[@]}"; do
            kill -KILL "$pid" || true
        done
        for pid in "${pids[@]}"; do
            wait "$pid" || true # our children (run): reap them
            for _ in $(seq 1 100); do # not our children (start, then stop): wait until gone
                running "$pid" || break
                sleep 0.05
            done
        done
    } 2>/dev/null # no "Killed" job notices
    if [[ ${RGW_KEEP_DIR:-0} == 1 ]]; then
        log "kept $DIR"
    else
        rm -rf "$DIR"
    fi
    DIR=""
}

print_env() {
    cat <<EOF
export TFS_TEST_S3_URL=http://127.0.0.1:$RGW_PORT
export TFS_TEST_S3_ACCESS_KEY=$ACCESS_KEY
export TFS_TEST_S3_SECRET_KEY=$SECRET_KEY
export TFS_TEST_S3_REGION=$REGION
export TFS_TEST_S3_BACKEND=ceph-rgw
EOF
}

# Set while starting: a failure then prints the daemons' logs before cleaning up.
STARTING=0

on_exit() {
    local status=$?
    set +e
    trap - ERR
    trap '' PIPE # a closed stdout/stderr (`| head`) must not stop the clean-up
    if ((STARTING)); then
        diagnose
    fi
    stop_cluster
    return "$status"
}

on_error() { log "failed (status $1): $2"; }

cmd_start() {
    [[ -e $RGW_STATE ]] && die "$RGW_STATE exists: a cluster may be running (scripts/rgw.sh stop)"
    trap on_exit EXIT
    trap 'on_error $? "$BASH_COMMAND"' ERR
    STARTING=1
    start_cluster
    STARTING=0
    trap - ERR
    # The daemons outlive this shell: `stop` finds them through the state file.
    echo "$DIR" >"$RGW_STATE"
    trap - EXIT
    print_env
}

cmd_stop() {
    [[ -f $RGW_STATE ]] || { log "nothing to stop ($RGW_STATE not found)"; return 0; }
    DIR=$(<"$RGW_STATE")
    stop_cluster
    rm -f "$RGW_STATE"
}

cmd_run() {
    [[ ${1:-} == -- ]] && shift
    (($# > 0)) || usage
    trap on_exit EXIT
    trap 'on_error $? "$BASH_COMMAND"' ERR
    trap 'exit 130' INT
    trap 'exit 143' TERM
    STARTING=1
    start_cluster
    STARTING=0
    trap - ERR
    eval "$(print_env)"
    local status=0
    "$@" || status=$?
    exit "$status"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
run) shift; cmd_run "$@" ;;
*) usage ;;
esac
