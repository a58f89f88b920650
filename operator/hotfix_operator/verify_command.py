"""hotfix-operator verify: the provenance gate from a workstation or a CI job, before anyone files a
hotfix. Same code path as the operator (policy resolution, registry discovery, verification); the
policy's ConfigMap/Secret references are read from local files given with --ref.

Exit status: 0 the gate would pass; 1 it would refuse (the reason is printed); 2 the command or the
policy is wrong; 3 the registry could not be reached (retry later)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from hotfix_operator.adapters.policies import ResolvedPolicy

# The verification stack (sigstore, cryptography, httpx, the Kubernetes client that adapters import) is
# imported inside run(): `--help` and argument mistakes answer at once.

EXIT_PASS, EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
# refusals that are mistakes in how the command was called, not verdicts on the image
USAGE_REASONS = frozenset({"InvalidImageReference", "NotDigestPinned", "RegistryPlainHTTP"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="registry/repository@sha256:<digest>")
    parser.add_argument("--commit", required=True, help="the 40-hex commit the image must be built from")
    parser.add_argument("--source-repo", required=True, help="e.g. github.com/acme/checkout")
    parser.add_argument("--policy", required=True, type=Path, help="a HotfixPolicy manifest (YAML or JSON)")
    parser.add_argument("--ref", action="append", default=[], metavar="NAME/KEY=FILE",
                        help="the value of a ConfigMap or Secret key the policy names (repeatable)")
    parser.add_argument("--evidence", help="the evidence bundle: oci://registry/repo@sha256:... or https://.../")
    parser.add_argument("--registry-config", type=Path, help="docker config.json with registry credentials")
    parser.add_argument("--registry-ca-file", help="extra CA bundle for registry TLS")
    parser.add_argument("--insecure-registry", action="append", default=[], metavar="HOST:PORT",
                        help="reach this loopback registry over plain HTTP (refused for other hosts)")
    parser.add_argument("--output", choices=["text", "json"], default="text")


def run(args: argparse.Namespace) -> int:
    from hotfix_operator.adapters.policies import PolicyProblem
    from hotfix_operator.adapters.registry import RegistryClient, RegistryCredentials
    from hotfix_operator.gates import check_image_provenance

    try:
        policy = _load_policy(args.policy, args.ref)
        credentials = (RegistryCredentials.from_dockerconfigjson(args.registry_config.read_bytes())
                       if args.registry_config else policy.registry_credentials)
        plain_http = frozenset(args.insecure_registry)
        RegistryClient(plain_http_hosts=plain_http).close()  # refuses non-loopback hosts up front
    except (PolicyProblem, ValueError, OSError) as exc:
        return _emit(args, {"verified": False, "reason": getattr(exc, "reason", "UsageError"), "message": str(exc)},
                     EXIT_USAGE)

    def registry(_: RegistryCredentials | None) -> RegistryClient:
        return RegistryClient(credentials=credentials, ca_file=args.registry_ca_file, plain_http_hosts=plain_http)

    check = check_image_provenance(policy, args.image, args.commit, args.source_repo, registry,
                                   evidence=args.evidence, ca_file=args.registry_ca_file)
    result: dict[str, Any] = {"verified": check.ok, "image": args.image, "policy": policy.name,
                              "reason": check.reason, "message": check.message}
    if check.ok:
        result["facts"] = dict(check.summary or {})
        return _emit(args, result, EXIT_PASS)
    if check.reason in USAGE_REASONS:
        return _emit(args, result, EXIT_USAGE)
    return _emit(args, result, EXIT_UNAVAILABLE if check.transient else EXIT_REFUSED)


def _load_policy(path: Path, refs: list[str]) -> ResolvedPolicy:
    import yaml

    from hotfix_operator.adapters.policies import PolicyProblem, resolve_policy

    documents = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    policy = next((d for d in documents if d.get("kind") == "HotfixPolicy"), None)
    if policy is None or not isinstance(policy.get("spec"), dict):
        raise PolicyProblem("PolicyInvalid", f"{path} holds no HotfixPolicy")
    values: dict[str, str] = {}
    for ref in refs:
        where, sep, file = ref.partition("=")
        if not sep or "/" not in where:
            raise PolicyProblem("UsageError", f"--ref {ref!r}: expected NAME/KEY=FILE")
        values[where] = Path(file).read_text()

    def lookup(kind: Literal["ConfigMap", "Secret"], ref: dict[str, str]) -> str:
        wanted = f"{ref['name']}/{ref['key']}"
        if wanted not in values:
            raise PolicyProblem("PolicyInvalid", f"the policy names {kind} key {wanted}; pass its value with "
                                f"--ref {wanted}=FILE")
        return values[wanted]

    policy.setdefault("metadata", {}).setdefault("name", path.stem)
    return resolve_policy(policy, lookup)


def _emit(args: argparse.Namespace, result: dict[str, Any], code: int) -> int:
    if args.output == "json":
        print(json.dumps(result, indent=2, sort_keys=True))
        return code
    if result.get("verified"):
        from hotfix_operator.core.intake import provenance_line

        facts = result["facts"]
        print(f"PASS  {result['image']}  (policy {result['policy']})")
        for label, value in (("signers", ", ".join(s.get("signer", "") for s in facts.get("signers", []))),
                             ("builder", facts.get("builderId")), ("source", facts.get("sourceRepository")),
                             ("commit", facts.get("commitSha")), ("predicates", ", ".join(facts.get("predicateTypes",
                                                                                                     []))),
                             ("summary", provenance_line(facts))):
            print(f"  {label:<11} {value}")
    else:
        print(f"FAIL  {result['reason']}: {result['message']}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotfix-operator verify", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
