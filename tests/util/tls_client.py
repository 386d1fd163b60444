#!/usr/bin/env python3
"""A TLS client nobody here wrote (Python's ssl, on OpenSSL), driven through
one way of ending a connection, for tests/tls.rs.

    python3 tls_client.py MODE HOST PORT [ARG]

Prints what it saw, one fact per line (`got N`, `end close_notify`,
`end eof`, `error ...`); exits 0 unless something failed to run.

Modes:
  echo-close-notify  handshake, send ARG bytes, read them back, send close_notify, read to the end
  truncate           handshake, send ARG bytes, then end the TCP stream without close_notify
  truncate-mid       handshake, then send half of a TLS record and end the stream
  reject-cert        verify the server's certificate against the system's CAs: the
                     handshake fails here and this side sends an alert
  plaintext          not TLS at all: send an HTTP request in the clear
  read-all           handshake, read until the server ends (close_notify or EOF)
  silent             connect and send nothing for ARG seconds
  wait               handshake, then read nothing for ARG seconds; then read to the end
  send-close         handshake, send ARG bytes, then close_notify and wait for the server's
"""
import socket
import ssl
import sys
import time

WAIT = 20.0


def ctx(verify=False):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        c.load_default_certs()
    else:
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
    return c


def connect(host, port):
    s = socket.create_connection((host, int(port)), timeout=WAIT)
    return s


def read_to_end(t):
    total = 0
    try:
        while True:
            b = t.recv(65536)
            if not b:
                print("end close_notify", flush=True)
                break
            total += len(b)
    except ssl.SSLEOFError as e:
        print(f"end eof ({e})", flush=True)
    except (ConnectionResetError, BrokenPipeError) as e:
        print(f"end reset ({e})", flush=True)
    except ssl.SSLError as e:
        print(f"error {e}", flush=True)
    print(f"got {total}", flush=True)
    return total


def main():
    mode, host, port = sys.argv[1], sys.argv[2], sys.argv[3]
    arg = sys.argv[4] if len(sys.argv) > 4 else "0"
    if mode == "plaintext":
        s = connect(host, port)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            data = s.recv(4096)
            print(f"plaintext reply {len(data)}", flush=True)
        except OSError as e:
            print(f"plaintext reply error {e}", flush=True)
        return
    if mode == "silent":
        s = connect(host, port)
        s.settimeout(float(arg) + 5)
        t0 = time.time()
        try:
            b = s.recv(1)
            print(f"silent closed after {time.time() - t0:.2f} s ({len(b)} bytes)", flush=True)
        except OSError as e:
            print(f"silent error after {time.time() - t0:.2f} s: {e}", flush=True)
        return
    if mode == "reject-cert":
        s = connect(host, port)
        try:
            ctx(verify=True).wrap_socket(s, server_hostname="localhost")
            print("handshake unexpectedly done", flush=True)
        except ssl.SSLCertVerificationError as e:
            print(f"verify failed: {e.verify_message}", flush=True)
        return
    s = connect(host, port)
    t = ctx().wrap_socket(s, server_hostname="localhost", suppress_ragged_eofs=False)
    print(f"handshake {t.version()}", flush=True)
    n = int(arg)
    if mode == "echo-close-notify":
        data = bytes(i % 251 for i in range(n))
        t.sendall(data)
        back = b""
        while len(back) < n:
            b = t.recv(65536)
            if not b:
                break
            back += b
        print(f"echoed {len(back)} {'same' if back == data else 'DIFFERENT'}", flush=True)
        raw = t.unwrap()  # sends our close_notify, waits for the server's
        print("unwrapped", flush=True)
        raw.close()
    elif mode == "truncate":
        t.sendall(bytes(n))
        time.sleep(0.2)
        # End the TCP stream without close_notify (under the TLS layer).
        raw = socket.fromfd(t.fileno(), socket.AF_INET, socket.SOCK_STREAM)
        raw.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        raw.close()
        t.close()
        print("truncated", flush=True)
    elif mode == "truncate-mid":
        # A record header and part of its body, written raw under the TLS
        # layer, then the end of the stream.
        raw = socket.fromfd(t.fileno(), socket.AF_INET, socket.SOCK_STREAM)
        raw.sendall(bytes([23, 3, 3, 0, 100]) + bytes(10))
        raw.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        raw.close()
        t.close()
        print("truncated mid-record", flush=True)
    elif mode == "read-all":
        read_to_end(t)
    elif mode == "wait":
        time.sleep(float(arg))
        read_to_end(t)
    elif mode == "send-close":
        t.sendall(bytes(n))
        t.unwrap()
        print("unwrapped", flush=True)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
