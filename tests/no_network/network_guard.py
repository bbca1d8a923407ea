"""No test may touch the network: connecting a socket (other than a local Unix socket) raises.

tests/conftest.py applies this to every test's process (an autouse fixture); a test that starts
Python subprocesses puts this folder on PYTHONPATH, and ``sitecustomize.py`` applies it there too.
"""

import socket

ORIGINAL_CONNECT = socket.socket.connect
ORIGINAL_CONNECT_EX = socket.socket.connect_ex


class NetworkBlockedError(OSError):
    """What a test sees when code under test tries to reach the network."""


def _check(sock: socket.socket, address) -> None:
    if sock.family != getattr(socket, "AF_UNIX", None):
        raise NetworkBlockedError(f"tests must not use the network: connect to {address!r} refused")


def guarded_connect(sock, address):
    _check(sock, address)
    return ORIGINAL_CONNECT(sock, address)


def guarded_connect_ex(sock, address):
    _check(sock, address)
    return ORIGINAL_CONNECT_EX(sock, address)


def install() -> None:
    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex
