"""hotfix-operator run: start the operator against the current kubeconfig or in-cluster config.
hotfix-operator postmortems: list hotfix tags whose post-mortem is missing (exit 1 when any are)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import urllib.parse
from typing import TYPE_CHECKING

from hotfix_operator import verify_command

CONNECTIONS = 32
log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from hotfix_operator import leader
    from hotfix_operator.controller import Controller
    from hotfix_operator.metrics import Metrics


# gc thresholds for the running operator (Python's defaults: 700, 10, 10)
GC_THRESHOLDS = (20_000, 20, 20)


def tune_garbage_collector() -> None:
    """Freeze what start-up built and collect less often.

    Nearly everything the operator allocates is freed by reference counting (decoded JSON, views, requests);
    the cycle collector finds little, but with the defaults it ran often and each full pass walked every
    object alive: the Kubernetes client's models, Kopf and our modules, then the watch caches. With 200
    hotfixes at once on 2 cores it took 17.9 of ~75 CPU-seconds, its full passes reaching 420 ms each.
    Frozen start-up objects (gc.freeze) are never walked again; the higher thresholds let short-lived
    objects die before a pass sees them. Measured alike (SCALE_SIZES=200, docs/scale.md): collector time
    17.9 -> 3.9 s, CPU per hotfix 0.376 -> 0.339 s, peak RSS 206 -> 205 MB."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def skip_httpx_command_line() -> None:
    """httpx imports its command-line tool whenever click and rich are installed (they are: the kubectl
    plugin uses rich), and with it click, rich and pygments: about 6 MB of RSS the operator never uses.
    A None in sys.modules makes that import fail, which httpx expects of an install without the tool."""
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def _run(args: argparse.Namespace) -> int:
    skip_httpx_command_line()  # before anything imports httpx
    import kopf
    from kubernetes import client
    from prometheus_client import start_http_server

    from hotfix_operator import handlers, leader
    from hotfix_operator.metrics import Metrics

    identity = args.identity if args.identity is not None else leader.default_identity()
    refusal = _refuse_run_args(args, identity)
    if refusal:
        print(f"hotfix-operator run: {refusal}", file=sys.stderr)
        return 2
    _load_kube_config(args.kubeconfig)
    metrics = Metrics()
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_address, registry=metrics.registry)
    configuration = client.Configuration.get_default_copy()
    # as many connections as threads may send at once (reconciles, their parallel reads, approval checks):
    # the client's default (5 per core) would open and drop extra ones under load
    configuration.connection_pool_maxsize = CONNECTIONS
    api = client.ApiClient(configuration)
    api.user_agent = _user_agent(identity)  # the API server's audit log names the replica that wrote
    # Built before the wait, so a standby that takes over starts at once; building starts no thread and
    # sends no request. Nothing runs it before Kopf starts, and Kopf starts only once this process leads.
    namespaces = args.namespace or []
    memo = handlers.shared_memo(_controller(args, api, metrics), namespaces)
    elector = _lead(args, identity, metrics) if args.leader_elect else None
    metrics.leader.set(1)
    tune_garbage_collector()
    try:
        asyncio.run(kopf.operator(standalone=True, clusterwide=not namespaces, namespaces=namespaces, memo=memo,
                                  liveness_endpoint=f"http://0.0.0.0:{args.health_port}/healthz"
                                  if args.health_port else None))
    finally:
        if elector is not None:
            elector.release()
    return 0


def _load_kube_config(kubeconfig: str | None) -> None:
    from kubernetes import config

    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
        config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        return
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def _user_agent(identity: str) -> str:
    return f"hotfix-operator ({identity})"


def _refuse_run_args(args: argparse.Namespace, identity: str) -> str | None:
    from hotfix_operator.core import leadership

    if not args.leader_elect:
        return None
    if not identity.strip():
        return "--identity is empty: give each replica a name of its own (the pod name by default)"
    return leadership.check_lease_seconds(args.lease_seconds) or leadership.check_lease_name(args.lease_name or "")


def _lead(args: argparse.Namespace, identity: str, metrics: Metrics) -> leader.Elector:
    """Block until this process holds the Lease (serving /healthz meanwhile), then keep it renewed."""
    from kubernetes import client

    from hotfix_operator import leader
    from hotfix_operator.core import leadership

    metrics.leader.set(0)
    configuration = client.Configuration.get_default_copy()
    configuration.retries = False  # a request that fails is tried again by the elector, on its own schedule
    api = client.ApiClient(configuration)  # its own connections: renewals never queue behind the reconciles'
    api.user_agent = _user_agent(identity)
    name = args.lease_name or leadership.default_lease_name(args.namespace or ())
    lock = leader.LeaseLock(api, args.lease_namespace or args.operator_namespace, name,
                            timeout=leadership.renew_period(args.lease_seconds) * 0.8)
    elector = leader.Elector(lock, identity, args.lease_seconds,
                             on_change=lambda leading: metrics.leader.set(int(leading)))
    health = leader.HealthServer(args.health_port, elector.healthy) if args.health_port else None
    standby_stop = signal.signal(signal.SIGTERM, _stop_standing_by)  # a standby has nothing to finish
    try:
        elector.acquire()
    finally:
        signal.signal(signal.SIGTERM, standby_stop)  # Kopf's own handler takes over once it runs
        if health is not None:
            health.close()
    elector.start_renewing()
    return elector


def _stop_standing_by(_signal: int, _frame: object) -> None:
    log.info("SIGTERM while standing by: exiting")
    sys.exit(0)


def _controller(args: argparse.Namespace, api: ApiClient, metrics: Metrics) -> Controller:
    from hotfix_operator.adapters.authorization import ApprovalAuthority
    from hotfix_operator.adapters.kube import KubeAdapter
    from hotfix_operator.adapters.policies import PolicyResolver
    from hotfix_operator.adapters.registry import RegistryClient, RegistryConnections, RegistryCredentials
    from hotfix_operator.controller import Controller
    from hotfix_operator.followup_runner import FollowupRunner, FollowupSettings
    from hotfix_operator.gates import Gates
    from hotfix_operator.notifier import Notifier
    from hotfix_operator.probes import Probes

    plain_http = frozenset(args.plain_http_registry or ())
    connections = RegistryConnections(args.registry_ca_file)  # for the life of the process

    def registry(credentials: RegistryCredentials | None) -> RegistryClient:
        return RegistryClient(credentials=credentials, plain_http_hosts=plain_http, connections=connections)

    followup = FollowupRunner(FollowupSettings(
        check_seconds=args.postmortem_check_seconds, deadline_seconds=args.postmortem_deadline_seconds,
        github_write_interval=args.github_write_interval, backoff_seconds=args.followup_backoff_seconds))
    gates = Gates(registry, ApprovalAuthority(api), ca_file=args.registry_ca_file,
                  api_server=_host_port(api.configuration.host))
    kube = KubeAdapter(api)
    policies = PolicyResolver(api, args.operator_namespace, kube.cache)
    probes = Probes(kube, policies, api_server=_host_port(api.configuration.host))
    return Controller(kube, policies, gates, metrics, probes=probes, followup=followup,
                      notifier=Notifier(policies, metrics))


def _host_port(url: str) -> str:
    """The API server's host:port from the client's configured URL (checks may never connect there)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def _postmortems(args: argparse.Namespace) -> int:
    from hotfix_operator.followup_steps import repository_of
    from hotfix_operator.publishing import GitHubSession, PublishingError, list_tags_without_postmortem
    from hotfix_operator.publishing.facts import postmortem_path

    token = os.environ.get(args.token_env, "").strip()
    if not token:
        print(f"hotfix-operator postmortems: set ${args.token_env} to a GitHub token that can read {args.repo}",
              file=sys.stderr)
        return 2
    repository = repository_of(args.repo)
    session = GitHubSession.from_token(token, base_url=args.github_url)
    try:
        missing = list_tags_without_postmortem(session, repository, default_branch=args.default_branch)
    except PublishingError as error:
        print(f"hotfix-operator postmortems: {error.message}", file=sys.stderr)
        return 2
    finally:
        session.close()
    for tag in missing:
        print(f"Missing: {postmortem_path(tag)}")
    if not missing:
        print(f"every hotfix tag of {repository} has its post-mortem")
    return 1 if missing else 0


def _env_float(name: str, default: float | None) -> float | None:
    value = os.environ.get(name)
    return float(value) if value else default


def _add_election_arguments(run: argparse.ArgumentParser) -> None:
    election = run.add_argument_group(
        "leader election", "run several replicas (or shards) safely: only the holder of a coordination.k8s.io "
        "Lease acts; the others wait, and take over when it is not renewed")
    election.add_argument("--leader-elect", action="store_true",
                          help="act only while holding the Lease; exit 3 at once when it cannot be renewed in time")
    election.add_argument("--lease-name", help="the Lease (default hotfix-operator; with --namespace, "
                          "hotfix-operator-<hash of the namespaces>, so each shard has its own)")
    election.add_argument("--lease-namespace", help="where the Lease lives (default: --operator-namespace)")
    election.add_argument("--identity", help="this replica's name in the Lease (default: $POD_NAME, else "
                          "<hostname>_<pid>); unique per replica")
    election.add_argument("--lease-seconds", type=int, default=15,
                          help="how long a Lease not renewed stays held (renewed every third of it)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotfix-operator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator")
    run.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then ~/.kube/config)")
    run.add_argument("--namespace", action="append", help="watch only this namespace (repeatable)")
    run.add_argument("--registry-ca-file", help="extra CA bundle for registry TLS (verification stays on)")
    run.add_argument("--plain-http-registry", action="append", metavar="HOST:PORT",
                     help="a loopback registry reached over plain HTTP (refused for any other host)")
    run.add_argument("--operator-namespace", default=os.environ.get("HOTFIX_OPERATOR_NAMESPACE", "hotfix-system"),
                     help="where the Secrets and ConfigMaps that HotfixPolicies name live")
    run.add_argument("--metrics-port", type=int, default=int(os.environ.get("HOTFIX_METRICS_PORT", "8080")))
    run.add_argument("--metrics-address", default="0.0.0.0")
    run.add_argument("--health-port", type=int, default=0, help="serve Kopf's liveness probe on this port")
    run.add_argument("--postmortem-check-seconds", type=float,
                     default=_env_float("HOTFIX_POSTMORTEM_CHECK_SECONDS", 600.0),
                     help="how often a promoted hotfix's post-mortem file is looked for on the default branch")
    run.add_argument("--postmortem-deadline-seconds", type=float,
                     default=_env_float("HOTFIX_POSTMORTEM_DEADLINE_SECONDS", None),
                     help="override every HotfixPolicy's postmortemDeadlineHours (drills and tests only)")
    run.add_argument("--github-write-interval", type=float,
                     default=_env_float("HOTFIX_GITHUB_WRITE_INTERVAL", 1.0),
                     help="seconds between GitHub writes (GitHub's advice against secondary rate limits)")
    run.add_argument("--followup-backoff-seconds", type=float,
                     default=_env_float("HOTFIX_FOLLOWUP_BACKOFF_SECONDS", 5.0),
                     help="first retry delay after a GitHub outage (doubles per attempt, at most 300 s)")
    _add_election_arguments(run)
    run.add_argument("-v", "--verbose", action="store_true")
    pm = sub.add_parser("postmortems", help="list hotfix tags without a post-mortem on the default branch",
                        description="Lists hotfix tags of a repository whose docs/releases/HOTFIX_POSTMORTEMS/"
                        "<tag>.md is missing on the default branch; exits 1 when any are missing.")
    pm.add_argument("--repo", required=True, help="owner/name (or github.com/owner/name)")
    pm.add_argument("--github-url", default=os.environ.get("GITHUB_API_URL", "https://api.github.com"),
                    help="GitHub's REST API URL (GitHub Enterprise: https://HOST/api/v3)")
    pm.add_argument("--token-env", default="GITHUB_TOKEN", help="environment variable holding the token")
    pm.add_argument("--default-branch", help="branch to look on (default: the repository's default branch)")
    verify = sub.add_parser("verify", help="run the provenance gate on an image, before filing a hotfix",
                            description=verify_command.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    verify_command.add_arguments(verify)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "verbose", False):  # per-request and per-event lines drown the lifecycle's own log
        for noisy in ("httpx", "kopf.objects", "kopf.activities.startup"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "run":
        return _run(args)
    if args.command == "postmortems":
        return _postmortems(args)
    if args.command == "verify":
        return verify_command.run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
