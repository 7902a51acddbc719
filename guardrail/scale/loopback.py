"""Keep Ray on loopback: Flower's simulation engine, and the local cluster of the Ray audit engine.

Every Ray process guardrail starts uses these settings: the federated simulation
(:mod:`guardrail.federation.flower.simulate`) and :func:`guardrail.scale.ray_engine.ray_scan`
when it starts a cluster of its own, or a one-node cluster started for it with
:func:`ray_start_head_argv`.

Measured with Ray 2.55.1 on Linux (issue 20): ``ray.init(_node_ip_address="127.0.0.1")``
alone leaves Ray listening on every interface. ``ray.init`` (and ``ray start``) pass the
address through ``ray._private.services.resolve_ip_for_localhost``, which replaces a
loopback address by the host's routable one whenever Ray's multi-node mode is on — the
default on Linux. Every component then chooses its bind address from that node IP:

- the C++ gRPC servers — the GCS server, the raylet's node and object managers, and the
  core-worker server of the driver and of every worker (the ClientApp actors) — listen on
  ``127.0.0.1`` when the node IP is exactly ``"127.0.0.1"`` and on ``0.0.0.0`` (dual-stack
  ``::``) otherwise; Ray has no per-component bind option for them;
- the runtime-env agent binds the node IP itself; the dashboard agent's gRPC and HTTP
  servers, the metrics exporter, the autoscaler's metrics server and the Ray Client server
  bind loopback when the node IP is loopback (none of them listens here: Ray is installed
  without its dashboard and client extras, so the dashboard agent runs minimal);
- the dashboard binds ``dashboard_host`` (guardrail does not start it).

So the one switch for listeners is the node IP, and what undoes it is Ray's multi-node mode:
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (read when ``ray`` is imported) turns it off, and
``resolve_ip_for_localhost`` then keeps ``127.0.0.1``. With :data:`RAY_ENV` in the
environment of the process that starts Ray, and :func:`ray_init_args` (or
:func:`ray_start_head_argv`) for the start, every listener of the run's process tree is on
``127.0.0.1`` (measured: GCS, raylet, driver, workers, runtime-env agent). Multi-node mode
off also means that ``ray start --address=…`` refuses to add a worker node: a local cluster
is one node. :func:`check_ray_stays_on_loopback` fails closed when an installed Ray would
still move the node off loopback.

Ray also reaches out: its head's usage-stats module asks the cloud metadata services which
cloud it runs on, with usage stats off (measured with ``strace -f``: HTTP to
``169.254.169.254`` and a DNS query), and a ``ray start`` head posts that usage stats are
disabled to ``usage-stats.ray.io``. No option turns the module off; :data:`RAY_ENV` sends
those requests to a proxy on loopback that refuses them. ``ray start`` also checks that the
worker ports 10002+ are free by binding ``0.0.0.0`` (no listen): :func:`ray_start_head_argv`
lets the workers take any free port on loopback instead.

No network namespace is needed: every component that listens has been bound by these
options and every outbound request seen goes to the loopback proxy (a namespace with only
``lo`` would also need root or user namespaces, which CI machines and containers do not
always allow).
"""

from __future__ import annotations

import os

from guardrail.core.errors import FederationError

LOOPBACK = "127.0.0.1"
"""The node IP Ray runs under. Exactly this string: Ray's components compare against it."""

SINKHOLE = "http://127.0.0.1:1"
"""An HTTP proxy on loopback where nothing listens: a request sent through it is refused at once."""

RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    **{name: SINKHOLE for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")},
    **{name: "localhost,127.0.0.1,::1" for name in ("NO_PROXY", "no_proxy")},
}
"""Environment of every process that imports Ray to start or join a guardrail cluster.

``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: despite the name, it switches Ray's multi-node mode
off on Linux too; without it ``ray.init`` replaces ``127.0.0.1`` by the host's routable
address. The proxy variables send every HTTP(S) request that honours them (requests, urllib)
to :data:`SINKHOLE`, except those to loopback: Ray's head always starts a
usage-stats module that probes the cloud metadata services (``169.254.169.254`` for Azure
and AWS, a DNS lookup of ``metadata.google.internal`` for GCP) even with usage stats off,
and a ``ray start`` cluster also posts a "usage stats disabled" report to
``usage-stats.ray.io``. Ray's own gRPC channels ignore proxies (``grpc.enable_http_proxy``
is 0) and talk to loopback, which the proxy never sees.
"""

OFF_LOOPBACK = "Ray would run beyond loopback"


def ray_init_args() -> dict[str, str | bool]:
    """Keyword arguments for ``ray.init`` that keep a local Ray cluster on loopback.

    >>> ray_init_args()
    {'_node_ip_address': '127.0.0.1', 'include_dashboard': False, 'dashboard_host': '127.0.0.1'}
    """
    return {"_node_ip_address": LOOPBACK, "include_dashboard": False, "dashboard_host": LOOPBACK}


def ray_start_head_argv() -> list[str]:
    """``ray start --head`` for a one-node local cluster on loopback (run it with :data:`RAY_ENV`).

    >>> " ".join(ray_start_head_argv())
    'ray start --head --node-ip-address=127.0.0.1 --include-dashboard=false --dashboard-host=127.0.0.1 --min-worker-port=0 --max-worker-port=0 --disable-usage-stats'
    """
    return [
        "ray",
        "start",
        "--head",
        f"--node-ip-address={LOOPBACK}",
        "--include-dashboard=false",
        f"--dashboard-host={LOOPBACK}",
        "--min-worker-port=0",
        "--max-worker-port=0",
        "--disable-usage-stats",
    ]


def check_ray_stays_on_loopback() -> None:
    """Fail closed unless this process runs with :data:`RAY_ENV` and its Ray keeps the node IP ``127.0.0.1``.

    Call it before starting Ray, with :data:`RAY_ENV` already in ``os.environ`` when ``ray``
    is first imported. Raises :class:`~guardrail.core.errors.FederationError` otherwise.
    """
    unset = sorted(name for name, value in RAY_ENV.items() if os.environ.get(name) != value)
    if unset:
        raise FederationError(
            f"{OFF_LOOPBACK}: its environment lacks {', '.join(unset)}",
            hint="start Ray from a process whose environment includes guardrail.scale.loopback.RAY_ENV",
        )
    import ray
    from ray._private import ray_constants, services

    resolved = services.resolve_ip_for_localhost(LOOPBACK)
    if resolved != LOOPBACK:
        raise FederationError(
            f"{OFF_LOOPBACK}: it resolves the node address {LOOPBACK} to {resolved}, so its servers would listen on "
            "every interface",
            where=f"ray {ray.__version__} (multi-node mode: {ray_constants.ENABLE_RAY_CLUSTER})",
            hint="set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before ray is imported, or report this with your Ray version",
        )
