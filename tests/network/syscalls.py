"""Every ``connect``/``bind``/``sendto``/``sendmsg`` to an IP address that a process tree makes,
from ``strace -f`` (Linux). Short-lived sockets that sampling misses show here: this is how
Ray's cloud-metadata probes were found (issue 20).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.network.sockets import loopback

CALLS = "trace=connect,bind,sendto,sendmsg"
_ADDRESS = re.compile(
    r"^(?P<pid>\d+)\s+(?P<call>connect|bind|sendto|sendmsg)\(.*?sa_family=(?P<family>AF_INET6?),\s*"
    r"sin6?_port=htons\((?P<port>\d+)\).*?"
    r"(?:sin_addr=inet_addr\(\"(?P<v4>[^\"]+)\"\)|inet_pton\(AF_INET6,\s*\"(?P<v6>[^\"]+)\")"
)


@dataclass(frozen=True)
class Call:
    pid: int
    call: str
    ip: str
    port: int

    def __str__(self) -> str:
        return f"pid {self.pid}: {self.call} {self.ip}:{self.port}"


@functools.cache
def strace() -> str | None:
    """The strace executable, when it is installed and may trace here (ptrace can be forbidden)."""
    found = shutil.which("strace")
    if found is None:
        return None
    probe = subprocess.run([found, "-f", "-qq", "-e", CALLS, "-o", "/dev/null", "true"], capture_output=True, timeout=30, check=False)
    return found if probe.returncode == 0 else None


def traced(argv: list[str], log: Path) -> list[str]:
    """``argv`` run under ``strace -f``, writing every IP socket call of the tree to ``log``."""
    tool = strace()
    assert tool is not None
    return [tool, "-f", "-qq", "--seccomp-bpf", "-e", CALLS, "-o", str(log), *argv]


def calls(log: Path) -> list[Call]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        match = _ADDRESS.search(line)
        if match:
            found.append(Call(int(match["pid"]), match["call"], match["v4"] or match["v6"], int(match["port"])))
    return found


def beyond_loopback(log: Path) -> list[str]:
    """Every call to an address beyond loopback (a bind to port 0 of ``::``/``0.0.0.0`` included)."""
    return sorted({str(c) for c in calls(log) if not loopback(c.ip)})
