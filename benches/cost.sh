#!/usr/bin/env bash
# What one connection's life costs the server, for hangup, raw mio and tokio:
#   - syscalls per connection (strace -c), a burst of N opened then all closed;
#   - user-space instructions per connection (valgrind --tool=callgrind);
#   - reads per request for an echo of small requests (strace -c).
# Per-connection figures are differences between two N, so start-up cancels out.
#
#   bash benches/cost.sh            # needs strace and valgrind (apt-get install strace valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-1000}
N2=${N2:-2000}
K=${K:-10000}
KIND=${KIND:-fin}
for tool in strace valgrind; do
    command -v $tool >/dev/null || { echo "cost.sh needs $tool"; exit 1; }
done
BIN=$(cargo bench --bench lifecycle --no-run 2>&1 | sed -n 's/.*Executable.*(\(.*lifecycle-[^)]*\)).*/\1/p' | tail -1)
[ -x "$BIN" ] || { echo "could not find the lifecycle binary"; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# run_server <tool-prefix...> -- <server args...>: runs one server + client round.
burst() { # $1 impl, $2 N, $3 out-file, $4 tool (strace|callgrind)
    local d="$WORK/$1-$2-$4"; mkdir -p "$d"; mkfifo "$d/go" "$d/closed"
    case $4 in
        strace) strace -c -o "$3" "$BIN" server "$1" "$2" "$d" & ;;
        callgrind) valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" \
                     "$BIN" server "$1" "$2" "$d" 2>"$3" & ;;
    esac
    local spid=$!
    "$BIN" client "$2" "$KIND" "$d"
    wait $spid
}
calls() { awk '$NF=="total"{print $(NF-2)}' "$1"; }   # total calls from strace -c
call_of() { awk -v s="$2" '$NF==s{print ($4 ~ /^[0-9]+$/ && $5 ~ /^[0-9]+$/) ? $4 : $4}' "$1" | head -1; }
instr() { sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$1"; }

echo "Burst of N connections, all closed at once by $KIND; per connection = (N=$N2 minus N=$N1) / $((N2-N1))."
echo
echo "| implementation | syscalls/conn | of which accept4, epoll_ctl, read/recvfrom, close, epoll_wait | instructions/conn |"
echo "|---|---|---|---|"
for impl in hangup hangup+latency mio tokio; do
    burst $impl $N1 "$WORK/s1" strace
    burst $impl $N2 "$WORK/s2" strace
    burst $impl $N1 "$WORK/c1" callgrind
    burst $impl $N2 "$WORK/c2" callgrind
    per=$(awk -v a="$(calls "$WORK/s1")" -v b="$(calls "$WORK/s2")" -v d=$((N2-N1)) 'BEGIN{printf "%.2f", (b-a)/d}')
    detail=""
    for sc in accept4 epoll_ctl read recvfrom close epoll_wait; do
        a=$(awk -v s=$sc '$NF==s{for(i=1;i<=NF;i++) if($i ~ /^[0-9]+$/ && i>=4){print $i; exit}}' "$WORK/s1"); a=${a:-0}
        b=$(awk -v s=$sc '$NF==s{for(i=1;i<=NF;i++) if($i ~ /^[0-9]+$/ && i>=4){print $i; exit}}' "$WORK/s2"); b=${b:-0}
        detail+="$sc $(awk -v a=$a -v b=$b -v d=$((N2-N1)) 'BEGIN{printf "%.2f", (b-a)/d}'), "
    done
    ins=$(awk -v a="$(instr "$WORK/c1")" -v b="$(instr "$WORK/c2")" -v d=$((N2-N1)) 'BEGIN{printf "%.0f", (b-a)/d}')
    echo "| $impl | $per | ${detail%, } | $ins |"
done

echo
echo "Echo, one connection, $K requests of 64 bytes, one at a time."
echo
# Counted with perf's syscall tracepoint, which does not slow the server:
# under strace the server is slow enough that the next request is often
# already there at its second read, which hides the extra read of a
# read-until-WouldBlock loop.
if perf stat -e 'syscalls:sys_enter_recvfrom' true >/dev/null 2>&1; then
    COUNT=perf
else
    COUNT=strace
    echo "(perf tracepoints unavailable: counting with strace, which understates extra reads)"
fi
echo "| implementation | reads per request |"
echo "|---|---|"
for impl in hangup mio tokio; do
    d="$WORK/echo-$impl"; mkdir -p "$d"
    if [ $COUNT = perf ]; then
        perf stat -e 'syscalls:sys_enter_recvfrom' -e 'syscalls:sys_enter_read' -o "$WORK/e" \
            "$BIN" echo-server $impl "$d" &
    else
        strace -c -o "$WORK/e" "$BIN" echo-server $impl "$d" &
    fi
    spid=$!
    "$BIN" echo-client "$K" 64 "$d"
    wait $spid
    if [ $COUNT = perf ]; then
        r=$(awk '/sys_enter_(recvfrom|read)/{gsub(",","",$1); s+=$1} END{print s+0}' "$WORK/e")
    else
        r=$(awk '$NF=="read"||$NF=="recvfrom"{for(i=1;i<=NF;i++) if($i ~ /^[0-9]+$/ && i>=4){s+=$i; break}} END{print s+0}' "$WORK/e")
    fi
    # The server's few start-up reads (ld.so, /proc) are included; they are
    # under 0.001 per request at K=10000.
    echo "| $impl | $(awk -v r=$r -v k=$K 'BEGIN{printf "%.3f", r/k}') |"
done
