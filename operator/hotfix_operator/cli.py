"""hotfix-operator run: start the operator against the current kubeconfig or in-cluster config."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from prometheus_client import start_http_server


def _run(args: argparse.Namespace) -> int:
    import kopf
    from kubernetes import client, config

    from hotfix_operator import handlers
    from hotfix_operator.adapters.kube import KubeAdapter
    from hotfix_operator.adapters.policies import PolicyResolver
    from hotfix_operator.adapters.registry import RegistryClient, RegistryCredentials
    from hotfix_operator.controller import Controller
    from hotfix_operator.gate import ProvenanceGate
    from hotfix_operator.metrics import Metrics

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
        config.load_kube_config(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
    else:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
    plain_http = frozenset(args.plain_http_registry or ())

    def registry(credentials: RegistryCredentials | None) -> RegistryClient:
        return RegistryClient(credentials=credentials, ca_file=args.registry_ca_file, plain_http_hosts=plain_http)

    metrics = Metrics()
    api = client.ApiClient()
    gate = ProvenanceGate(PolicyResolver(api, args.operator_namespace), registry)
    handlers.Runtime.controller = Controller(KubeAdapter(api), registry, gate, metrics)
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_address, registry=metrics.registry)

    @kopf.on.login()
    def login(**_: object) -> kopf.ConnectionInfo:
        # The same credentials the kubernetes client loaded above (Kopf's own helper would reload them
        # from a default path instead of --kubeconfig).
        conf = client.Configuration.get_default_copy()
        header = conf.get_api_key_with_prefix("BearerToken") or conf.get_api_key_with_prefix("authorization")
        scheme, _sep, token = (header or "").rpartition(" ")
        return kopf.ConnectionInfo(
            server=conf.host, ca_path=conf.ssl_ca_cert, insecure=not conf.verify_ssl,
            scheme=scheme or None, token=token or None,
            certificate_path=conf.cert_file, private_key_path=conf.key_file,
        )

    namespaces = args.namespace or []
    asyncio.run(kopf.operator(standalone=True, clusterwide=not namespaces, namespaces=namespaces,
                              liveness_endpoint=f"http://0.0.0.0:{args.health_port}/healthz"
                              if args.health_port else None))
    return 0


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
    run.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # per-request and per-event lines drown the lifecycle's own log
        for noisy in ("httpx", "kopf.objects", "kopf.activities.startup"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "run":
        return _run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
