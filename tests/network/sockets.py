"""What a run does on the network, seen from outside: an in-process socket guard and a
sampler of the sockets of a tagged process tree.

Loopback is decided here with :mod:`ipaddress` alone (127.0.0.0/8, ::1, and their
IPv4-mapped form ``::ffff:127.x.y.z``), independently of guardrail's own helper.
"""

from __future__ import annotations

import _socket
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import psutil

TAG_ENV = "GUARDRAIL_NETWORK_TEST_TAG"
"""Set to a fresh value in the environment a test's run starts with; every process of the run inherits it."""

SOCKET_CALLS = ("connect", "connect_ex", "bind", "sendto", "sendmsg")
LOOKUPS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex")
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def loopback(host: str) -> bool:
    """Whether ``host`` is a loopback IP literal or the name ``localhost``."""
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a host name other than localhost: a lookup, perhaps beyond this machine
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        return ip in ipaddress.ip_network("127.0.0.0/8")
    return ip == ipaddress.IPv6Address("::1")


# --- in-process guard ---------------------------------------------------------------------


class NetworkBlocked(ConnectionRefusedError):
    """Raised by :class:`SocketGuard` in place of a connection, listener or lookup beyond loopback."""


@dataclass
class SocketGuard:
    """Refuse, and record, every ``connect``/``bind``/``sendto``/``sendmsg`` of an IP socket
    to an address beyond loopback, and every lookup of a name other than ``localhost``.

    Patches :class:`socket.socket` (every Python socket, ssl and asyncio ones included) and
    :func:`socket.getaddrinfo`/``gethostbyname``; AF_UNIX sockets pass. Processes started
    meanwhile are not covered: sample them with :class:`TreeSampler`.
    """

    attempts: list[tuple[str, str]] = field(default_factory=list)
    _saved: dict[str, Any] = field(default_factory=dict)

    def _check(self, call: str, sock: socket.socket | None, address: Any) -> None:
        if sock is not None and sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        host = address[0] if isinstance(address, tuple) else address
        host = host.decode() if isinstance(host, bytes) else str(host)
        if not loopback(host):
            self.attempts.append((call, f"{host or '<any>'}" + (f":{address[1]}" if isinstance(address, tuple) else "")))
            raise NetworkBlocked(f"blocked by the test's socket guard: {call} {address!r}")

    def __enter__(self) -> SocketGuard:
        guard = self
        cls = socket.socket
        self._saved = {name: getattr(cls, name) for name in SOCKET_CALLS} | {name: getattr(socket, name) for name in LOOKUPS}
        saved = self._saved

        def address_of(name: str, args: tuple[Any, ...]) -> Any:
            if name == "sendto":
                return args[-1]  # sendto(data, [flags,] address)
            if name == "sendmsg":
                return args[3] if len(args) > 3 else None  # sendmsg(buffers, ancdata, flags, address)
            return args[0] if args else None  # connect, connect_ex, bind

        def wrap(name: str) -> Callable[..., Any]:
            original = saved[name]

            def method(self: socket.socket, *args: Any) -> Any:
                address = address_of(name, args)
                if address is not None:
                    guard._check(name, self, address)
                return original(self, *args)

            return method

        for name in SOCKET_CALLS:
            setattr(cls, name, wrap(name))

        def lookup(name: str) -> Callable[..., Any]:
            original = saved[name]

            def function(host: Any, *args: Any, **kwargs: Any) -> Any:
                if host is not None:
                    text = host.decode() if isinstance(host, bytes) else str(host)
                    if not loopback(text):
                        guard.attempts.append((name, text))
                        raise socket.gaierror(socket.EAI_NONAME, f"blocked by the test's socket guard: {name} {text!r}")
                return original(host, *args, **kwargs)

            return function

        for name in LOOKUPS:
            setattr(socket, name, lookup(name))
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for name in SOCKET_CALLS:
            setattr(socket.socket, name, self._saved[name])
        for name in LOOKUPS:
            setattr(socket, name, self._saved[name])


# --- sampler of a process tree --------------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    process: str
    proto: str
    ip: str
    port: int


@dataclass(frozen=True)
class Peer:
    process: str
    local: str
    remote: str
    status: str


def host_addresses() -> list[tuple[int, str]]:
    """This machine's addresses beyond loopback (link-local IPv6 left out: it needs a scope)."""
    found = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address.address):
                if not address.address.lower().startswith("fe80"):
                    found.append((int(address.family), address.address))
    return found


def _process_name(process: psutil.Process) -> str:
    try:
        command: list[str] = process.cmdline()
    except (psutil.Error, OSError):
        command = []
    if command and command[0].startswith("ray::"):
        return command[0].split()[0]  # a Ray worker names itself (ray::ClientAppActor, ray::IDLE, …)
    return str(process.name())


def _tagged(tag: str) -> Iterator[psutil.Process]:
    for process in psutil.process_iter():
        try:
            if process.pid != os.getpid() and process.environ().get(TAG_ENV) == tag:
                yield process
        except (psutil.Error, OSError):
            continue


class Members:
    """The processes of one run: those that carry ``TAG_ENV=tag`` and all their descendants.

    Descendants count even where the tag cannot be read: a process that renames itself
    (Ray's ``ray::…`` workers and agents, through setproctitle) may overwrite the memory
    ``/proc/PID/environ`` shows. Once seen, a process stays a member when it is reparented
    (its parent killed, or a daemon).
    """

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self._known: dict[int, psutil.Process] = {}

    def alive(self) -> list[psutil.Process]:
        for process in _tagged(self.tag):
            self._known.setdefault(process.pid, process)
        for process in list(self._known.values()):
            try:
                for child in process.children(recursive=True):
                    self._known.setdefault(child.pid, child)
            except (psutil.Error, OSError):
                continue
        alive = []
        for pid, process in list(self._known.items()):
            try:
                running = process.is_running() and process.status() != psutil.STATUS_ZOMBIE  # is_running checks the start time too
            except psutil.Error:
                running = False
            if running:
                alive.append(process)
            else:
                del self._known[pid]
        return alive

    def kill(self, attempts: int = 50) -> list[int]:
        """SIGKILL every member, by pid, until none is left (a dying parent may have started one more)."""
        killed: list[int] = []
        for _ in range(attempts):
            alive = self.alive()
            if not alive:
                break
            for process in alive:
                try:
                    process.kill()
                    killed.append(process.pid)
                except psutil.Error:
                    continue
            psutil.wait_procs(alive, timeout=2)
        return killed


class TreeSampler:
    """Samples, until stopped, the sockets of every process of a run (:class:`Members`).

    Each pass records every listener (TCP in LISTEN, any bound UDP socket) and
    every connection's peer; each listener's port is also tried, once, from every address of
    this machine beyond loopback (:attr:`accepted` lists the ones that answered).
    """

    def __init__(self, tag: str, interval: float = 0.2) -> None:
        self.tag = tag
        self.members = Members(tag)
        self.interval = interval
        self.listeners: set[Listener] = set()
        self.peers: set[Peer] = set()
        self.accepted: list[str] = []
        self.passes = 0
        self.processes: set[str] = set()
        self._probed: set[int] = set()
        self._hosts = host_addresses()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()  # one last pass

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        processes = self.members.alive()
        if processes:
            self.passes += 1
        for process in processes:
            try:
                name = _process_name(process)
                connections = process.net_connections(kind="inet")
            except (psutil.Error, OSError):
                continue
            self.processes.add(name)
            for c in connections:
                proto = "udp" if c.type == socket.SOCK_DGRAM else "tcp"
                if c.raddr:
                    self.peers.add(Peer(name, f"{c.laddr.ip}:{c.laddr.port}", f"{c.raddr.ip}:{c.raddr.port}", c.status))
                elif c.status == psutil.CONN_LISTEN or proto == "udp":
                    self.listeners.add(Listener(name, proto, c.laddr.ip, c.laddr.port))
                    if proto == "tcp":
                        self._probe(name, c.laddr.port)

    def _probe(self, name: str, port: int) -> None:
        if port in self._probed:
            return
        self._probed.add(port)
        for family, address in self._hosts:
            probe = _socket.socket(family, socket.SOCK_STREAM)  # the C socket: not seen by SocketGuard
            probe.settimeout(0.5)
            try:
                if probe.connect_ex((address, port)) == 0:
                    self.accepted.append(f"{name} accepted a connection on {address}:{port}")
            except OSError:
                pass
            finally:
                probe.close()

    def beyond_loopback(self) -> list[str]:
        """Every listener or peer beyond loopback, and every port that answered on a host address."""
        found = [f"{x.process} listens on {x.proto} {x.ip}:{x.port}" for x in self.listeners if not loopback(x.ip)]
        found += [f"{p.process} {p.local} -> {p.remote} ({p.status})" for p in self.peers if not loopback(p.remote.rsplit(":", 1)[0])]
        return sorted(found) + self.accepted

    def wait_for(self, predicate: Callable[[TreeSampler], bool], timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds (a condition on what was seen, not a sleep)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(self.interval)
        return predicate(self)
