#!/usr/bin/env bash
# A throwaway one-node Ceph cluster serving S3 on loopback for the tests (test/support/s3Server.ts runs it):
# one ceph-mon, one ceph-osd keeping objects in memory, and radosgw (Ceph's S3 gateway, beast frontend).
# Debian's radosgw (Ceph 16.2) is used because it honours PutObject with `If-None-Match: *` (412 on an
# existing key; exactly one of concurrent conditional creates wins), which the S3 Archive relies on.
#
# Env (all required): RGW_PORT (S3 port on 127.0.0.1), MON_PORT (the monitor's port on 127.0.0.1),
# S3_ACCESS_KEY / S3_SECRET_KEY (the keys of the one S3 user). Optional: MEMSTORE_BYTES (the OSD's
# capacity, default 1 GiB; memory is used only as objects are written).
#
# Every daemon is a child of this script; all state lives in a fresh temporary directory, removed when the
# script ends. Prints `READY port=<RGW_PORT> in <ms>ms` when S3 answers. Then it reads commands on stdin, one
# a line, and answers each with `OK <command>` once done:
#   stop-gateway    SIGKILL radosgw (it may take up to 120 s to honour SIGTERM); the objects stay in the OSD
#   start-gateway   start radosgw again (same port and data) and wait until it answers
#   pause-gateway   SIGSTOP radosgw: connections are accepted by the kernel but never answered
#   resume-gateway  SIGCONT radosgw
# End of stdin (the parent closed it or died), SIGTERM or SIGINT: every daemon is SIGKILLed, the directory
# removed. It exits with an error if ceph-mon or ceph-osd dies (their data, hence every object, is lost).
set -euo pipefail
: "${RGW_PORT:?}" "${MON_PORT:?}" "${S3_ACCESS_KEY:?}" "${S3_SECRET_KEY:?}"
D=$(mktemp -d "${TMPDIR:-/tmp}/annals-rgw-XXXXXX")
daemons=()
rgw=""
cleanup() {
  for pid in "${daemons[@]}" $rgw; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
t0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }
# Fails with the tail of a daemon's log.
die() { echo "$1" >&2; tail -n 20 "$D"/log/* >&2 2>/dev/null || true; exit 1; }
# Whether S3 answers on RGW_PORT (an anonymous GET / lists no buckets): a program that took the port
# meanwhile does not count (radosgw then fails to bind and exits).
answering() {
  local reply
  reply=$({ exec 3<>"/dev/tcp/127.0.0.1/$RGW_PORT" && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && timeout 2 cat <&3; } 2>/dev/null) || true
  [[ $reply == *ListAllMyBucketsResult* ]]
}

FSID=$(cat /proc/sys/kernel/random/uuid)
C=$D/ceph.conf
# - auth ... = none, ms ... mode = crc: no cephx keys to create and hand around, no message encryption.
#   The cluster is reachable only on loopback and lives for one test run; S3 requests are still
#   authenticated by radosgw (SigV4 with the user's keys).
# - admin socket / run dir / log file / mon data / osd data under $D: nothing outside it, several clusters
#   can run at once.
# - mon data avail crit/warn = 0: the monitor otherwise refuses to run (or warns) when the disk holding
#   its data is under 5 % (30 %) free, which a busy shared machine can be.
# - osd pool default size/min size = 1, mon allow pool size one, mon warn on pool no redundancy = false:
#   one OSD holds every object's only copy; the default 3 copies would leave every placement group
#   degraded and radosgw's pools unwritable.
# - pg autoscale off, pg num = 1, mon max pg per osd: radosgw creates about 8 pools at start; one placement
#   group each peers instantly, and the per-OSD limit is not reached.
# - paxos propose interval / min wait: the monitor commits map changes (pool creations, the OSD's boot)
#   after 10-50 ms instead of 1 s; that is most of the start time otherwise.
# - osd objectstore = memstore: objects in memory (no disk format, no fsync), bounded by
#   memstore device bytes.
# - rgw num control oids = 1: radosgw creates and watches 1 control object instead of 8 at start.
# - tcp_nodelay=1 (beast frontend): without it a GetObject answer's body waits for the client's delayed
#   ACK of its headers (Nagle): 47 ms a small GET instead of 4.6 ms.
# - osd client watch timeout = 2: radosgw's metadata cache tells every watcher of its control object
#   about each bucket creation or deletion and waits for their answers; after a SIGKILL (stop-gateway)
#   the dead gateway's watch lingers until this timeout (default 30 s), and so would each such call.
#   With 2 s, the first bucket call after a restart waits at most that; the cache stays on (turning it
#   off instead made every put about twice as slow: 1,100 puts 8.4 s instead of 4.2 s).
cat > "$C" <<CONF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
ms client mode = crc
ms service mode = crc
ms cluster mode = crc
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
mon data avail crit = 0
mon data avail warn = 0
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg autoscale mode = off
osd pool default pg num = 1
osd pool default pgp num = 1
mon max pg per osd = 1000
paxos propose interval = 0.05
paxos min wait = 0.01
[mon.a]
mon data = $D/mon.a
[osd]
osd objectstore = memstore
memstore device bytes = ${MEMSTORE_BYTES:-1073741824}
osd data = $D/osd.\$id
osd client watch timeout = 2
[client.rgw]
rgw num control oids = 1
rgw cache enabled = true
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
CONF
mkdir -p "$D/run" "$D/log" "$D/mon.a" "$D/osd.0"

monmaptool --create --add a "v2:127.0.0.1:$MON_PORT" --fsid "$FSID" "$D/monmap" >/dev/null
ceph-mon -c "$C" -i a --mkfs --monmap "$D/monmap"
ceph-mon -c "$C" -i a -f >>"$D/log/mon.out" 2>&1 & daemons+=($!)
osd=$(ceph -c "$C" --connect-timeout 30 osd create) || die "the monitor did not answer"
ceph-osd -c "$C" -i "$osd" --mkfs >>"$D/log/osd.out" 2>&1 || die "ceph-osd --mkfs failed"
ceph-osd -c "$C" -i "$osd" -f >>"$D/log/osd.out" 2>&1 & daemons+=($!)

start_gateway() {
  radosgw -c "$C" -n client.rgw -f >>"$D/log/rgw.out" 2>&1 & rgw=$!
  until answering; do
    kill -0 "$rgw" 2>/dev/null || die "radosgw exited"
    sleep 0.05
  done
}
start_gateway
radosgw-admin -c "$C" user create --uid=annals --display-name=annals \
  --access-key="$S3_ACCESS_KEY" --secret="$S3_SECRET_KEY" >/dev/null || die "radosgw-admin user create failed"
echo "READY port=$RGW_PORT in $(ms)ms"

partial=""
while true; do
  # A 1 s timeout, to notice a dead ceph-mon or ceph-osd; a timeout keeps what it read of a line.
  if read -r -t 1 line; then
    command=$partial$line
    partial=""
    case $command in
      stop-gateway) [ -z "$rgw" ] || { kill -KILL "$rgw"; wait "$rgw" 2>/dev/null || true; rgw=""; } ;;
      start-gateway) [ -n "$rgw" ] || start_gateway ;;
      pause-gateway) [ -z "$rgw" ] || kill -STOP "$rgw" ;;
      resume-gateway) [ -z "$rgw" ] || kill -CONT "$rgw" ;;
      *) echo "unknown command: $command" >&2; exit 2 ;;
    esac
    echo "OK $command"
  elif [ $? -gt 128 ]; then
    partial+=$line
  else
    exit 0 # end of stdin
  fi
  for pid in "${daemons[@]}"; do kill -0 "$pid" 2>/dev/null || die "ceph-mon or ceph-osd exited"; done
done
