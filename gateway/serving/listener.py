"""The listening socket, bound before anything says "serving": a busy port is a message
and exit status 1, not a traceback after the banner. Workers share this one socket."""

from __future__ import annotations

import errno
import socket

BACKLOG = 2048


class ListenError(Exception):
    """Why the address cannot be listened on, for the operator."""


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {_why(exc)}") from None
    sock.set_inheritable(True)  # workers are started with it
    return sock


def _why(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "the port is already in use (is another gateway running? choose one with --port)"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "no network interface of this machine has that address (try --host 0.0.0.0)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    return exc.strerror or str(exc)
