#!/usr/bin/env python3
"""Starts a program the way systemd's socket activation does, and checks it.

    python3 activate.py DIR PROGRAM [ARGS...]

The parent binds a TCP listener on 127.0.0.1 (port 0) and a Unix-domain one
at DIR/activated.sock, and a notification socket at DIR/notify.sock. The
child puts the listeners at descriptors 3 and 4 (not close-on-exec), sets
LISTEN_FDS=2, LISTEN_PID to its own pid, LISTEN_FDNAMES=web:local and
NOTIFY_SOCKET, and execs PROGRAM (an echo server). The parent waits for
READY=1, sends a line through each listener and reads it back, then sends
SIGTERM and expects a clean exit. Prints what it saw; exits non-zero on any
failure.
"""
import fcntl
import os
import signal
import socket
import sys
import time

WAIT = 20.0


def main():
    d, prog, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(64)
    unix_path = os.path.join(d, "activated.sock")
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(unix_path)
    unix.listen(64)
    notify_path = os.path.join(d, "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(WAIT)
    tcp_addr = tcp.getsockname()

    pid = os.fork()
    if pid == 0:
        # Out of the way of 3 and 4 first, then into place.
        hi_tcp = fcntl.fcntl(tcp.fileno(), fcntl.F_DUPFD, 10)
        hi_unix = fcntl.fcntl(unix.fileno(), fcntl.F_DUPFD, 10)
        os.dup2(hi_tcp, 3, inheritable=True)
        os.dup2(hi_unix, 4, inheritable=True)
        env = dict(os.environ)
        env.update(
            LISTEN_FDS="2",
            LISTEN_PID=str(os.getpid()),
            LISTEN_FDNAMES="web:local",
            NOTIFY_SOCKET=notify_path,
        )
        os.execve(prog, [prog] + args, env)

    tcp.close()
    unix.close()
    try:
        msg = notify.recv(4096).decode()
        print(f"notify socket got {msg!r}")
        assert "READY=1" in msg, msg
        check("tcp", socket.AF_INET, tcp_addr)
        check("unix", socket.AF_UNIX, unix_path)
    finally:
        os.kill(pid, signal.SIGTERM)
        end = time.time() + WAIT
        while True:
            got, status = os.waitpid(pid, os.WNOHANG)
            if got:
                break
            if time.time() > end:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                sys.exit("the activated program did not stop on SIGTERM")
            time.sleep(0.01)
    code = os.waitstatus_to_exitcode(status)
    print(f"activated program exited with {code} after SIGTERM")
    assert code == 0, code
    assert os.path.exists(unix_path), "the manager's socket file is left alone"
    print("socket activation: OK")


def check(name, family, addr):
    c = socket.socket(family, socket.SOCK_STREAM)
    c.settimeout(WAIT)
    c.connect(addr)
    line = f"hello over {name}".encode()
    c.sendall(line)
    c.shutdown(socket.SHUT_WR)
    back = b""
    while True:
        chunk = c.recv(4096)
        if not chunk:
            break
        back += chunk
    c.close()
    print(f"{name} {addr}: sent {line!r}, got back {back!r}")
    assert back == line, (line, back)


if __name__ == "__main__":
    main()
