#!/usr/bin/env bash
# The examples over Unix domain sockets, with clients nobody here wrote:
# echo and chat with `nc -U` and socat, the proxy from a Unix path to a TCP
# echo and from TCP to a Unix echo; each stopped with SIGINT (Ctrl-C), and
# its socket file gone after.
#   bash .ci/unix-examples.sh      # needs socat and netcat-openbsd
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --examples
BIN=target/release/examples
D=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$D"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket at $1"; exit 1; }
stop() { kill -INT "$1"; for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || { wait "$1"; return; }; sleep 0.05; done; echo "pid $1 did not stop on SIGINT"; exit 1; }
expect() { [ "$2" = "$3" ] || { echo "$1: expected '$3', got '$2'"; exit 1; }; echo "$1: '$2' ok"; }

$BIN/echo --unix "$D/echo.sock" >"$D/echo.log" 2>&1 & E=$!; PIDS+=($E)
wait_for "$D/echo.sock"
expect "echo via socat" "$(printf 'hi socat' | socat -t 5 - UNIX-CONNECT:"$D/echo.sock")" "hi socat"
expect "echo via nc -U" "$(printf 'hi nc' | nc -N -U "$D/echo.sock")" "hi nc"

$BIN/proxy "$D/proxy.sock" "$D/echo.sock" >"$D/proxy.log" 2>&1 & P=$!; PIDS+=($P)
wait_for "$D/proxy.sock"
expect "proxy unix->unix via socat" "$(printf 'through' | socat -t 5 - UNIX-CONNECT:"$D/proxy.sock")" "through"
stop $P
[ ! -e "$D/proxy.sock" ] || { echo "the proxy left its socket file"; exit 1; }

$BIN/proxy 127.0.0.1:7451 "unix:$D/echo.sock" >"$D/proxy2.log" 2>&1 & P=$!; PIDS+=($P)
for _ in $(seq 200); do nc -z 127.0.0.1 7451 2>/dev/null && break; sleep 0.05; done
expect "proxy tcp->unix via nc" "$(printf 'tcp to unix' | nc -N 127.0.0.1 7451)" "tcp to unix"
stop $P

$BIN/chat --unix "$D/chat.sock" >"$D/chat.log" 2>&1 & C=$!; PIDS+=($C)
wait_for "$D/chat.sock"
got=$( (sleep 0.5; printf 'hello from socat\n'; sleep 0.5) | socat -t 2 - UNIX-CONNECT:"$D/chat.sock" | head -1)
case "$got" in welcome,*) echo "chat via socat: '$got' ok" ;; *) echo "chat: got '$got'"; exit 1 ;; esac
stop $C
[ ! -e "$D/chat.sock" ] || { echo "chat left its socket file"; exit 1; }

stop $E
[ ! -e "$D/echo.sock" ] || { echo "echo left its socket file"; exit 1; }
grep -q "unix peer closed: closed by peer" "$D/echo.log" || { cat "$D/echo.log"; exit 1; }
echo "unix examples: OK"
