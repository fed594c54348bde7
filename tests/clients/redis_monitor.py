"""Records the commands a redis-server receives, binary-safe, from its MONITOR feed (test helper).

MONITOR prints each command as `<time> [<db> <client>] "arg" "arg" ...`, every argument escaped the way Redis's
sdscatrepr does it (\\n, \\r, \\t, \\a, \\b, \\\\, \\", \\xHH). A marker command (ECHO) sent after the commands
of interest ends a recording, so no sleep decides when the feed is complete.
"""
from __future__ import annotations

import socket
import uuid
from typing import Callable, List

Command = List[bytes]

_SIMPLE_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("a"): b"\a", ord("b"): b"\b",
                   ord("\\"): b"\\", ord('"'): b'"'}


def parse_monitor_line(line: bytes) -> Command:
    """The arguments of one MONITOR line (without its leading '+')."""
    start = line.index(b"] ") + 2
    args: Command = []
    i = start
    while i < len(line):
        if line[i] != ord('"'):
            i += 1
            continue
        i += 1
        arg = bytearray()
        while line[i] != ord('"'):
            c = line[i]
            if c == ord("\\"):
                n = line[i + 1]
                if n == ord("x"):
                    arg.append(int(line[i + 2:i + 4], 16))
                    i += 4
                    continue
                arg += _SIMPLE_ESCAPES[n]
                i += 2
                continue
            arg.append(c)
            i += 1
        args.append(bytes(arg))
        i += 1
    return args


class RedisMonitor:
    """One MONITOR connection to a redis-server on 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self._file = self._sock.makefile("rb")
        self._sock.sendall(b"MONITOR\r\n")
        if self._file.readline().strip() != b"+OK":
            raise RuntimeError("MONITOR refused")

    def record(self, action: Callable[[], None]) -> List[Command]:
        """Runs `action` and returns the commands the server received until it ended (this helper's own
        marker commands left out)."""
        marker = f"end-of-recording-{uuid.uuid4().hex}".encode()
        action()
        with socket.create_connection(("127.0.0.1", self._port), timeout=20) as s:
            s.sendall(b"ECHO " + marker + b"\r\n")
            s.recv(1024)
        out: List[Command] = []
        while True:
            line = self._file.readline()
            if not line:
                raise RuntimeError("MONITOR connection closed before the end marker")
            cmd = parse_monitor_line(line.rstrip(b"\r\n"))
            if cmd and cmd[0].upper() == b"ECHO":
                if cmd[1:] == [marker]:
                    return out
                continue
            out.append(cmd)

    def close(self) -> None:
        self._file.close()
        self._sock.close()
