#!/usr/bin/env python3
"""A TLS server nobody here wrote (Python's ssl, on OpenSSL), for the
client side of tests/tls.rs.

    python3 tls_server.py CERT KEY PORTFILE

Listens on 127.0.0.1 (port 0; the port is written to PORTFILE), accepts one
connection, echoes what it reads until the client's close_notify, answers
with its own close_notify, and prints what happened.
"""
import socket
import ssl
import sys

cert, key, portfile = sys.argv[1:4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
with open(portfile + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
import os
os.rename(portfile + ".tmp", portfile)
ls.settimeout(20)
s, _ = ls.accept()
s.settimeout(20)
try:
    t = ctx.wrap_socket(s, server_side=True, suppress_ragged_eofs=False)
except ssl.SSLError as e:
    print(f"handshake failed: {e}", flush=True)
    sys.exit(0)
print(f"handshake {t.version()}", flush=True)
total = 0
try:
    while True:
        b = t.recv(65536)
        if not b:
            print("client sent close_notify", flush=True)
            break
        total += len(b)
        t.sendall(b)
except ssl.SSLEOFError:
    print("client ended without close_notify", flush=True)
print(f"echoed {total}", flush=True)
try:
    t.unwrap()
    print("answered with close_notify", flush=True)
except (ssl.SSLError, OSError) as e:
    print(f"unwrap: {e}", flush=True)
