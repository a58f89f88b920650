"""Who exists on the local control plane, and what RBAC lets each of them do.

People are client certificates: the API server's x509 authenticator takes the user name from the
CN and the groups from the O entries. Service accounts are client certificates too, issued the way
the API server names a token's bearer (CN `system:serviceaccount:<ns>:<name>`, O
`system:serviceaccounts` and `system:serviceaccounts:<ns>`), so RBAC and admission treat them
exactly as the service account, without tokens that expire. Each identity gets
`users/<name>.kubeconfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SECURITY_GROUP = "hotfix-security"

USERS: dict[str, tuple[str, ...]] = {
    # name -> groups (the certificate's O entries)
    "alice": ("hotfix:requesters",),  # files hotfixes
    "bob": ("hotfix:approvers",),
    "carol": ("hotfix:approvers", SECURITY_GROUP),  # an approver who can also approve as security
    "dave": ("hotfix:approvers",),  # an approver who is not in security
    "mallory": (),  # authenticated, and granted nothing
}


@dataclass(frozen=True)
class ServiceAccountIdentity:
    namespace: str
    name: str
    cluster_role: str  # what it is bound to, cluster-wide

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> tuple[str, ...]:
        return ("system:serviceaccounts", f"system:serviceaccounts:{self.namespace}")


OPERATOR = ServiceAccountIdentity("hotfix-system", "hotfix-operator", "hotfix-operator")

SERVICE_ACCOUNTS: dict[str, ServiceAccountIdentity] = {
    # kubeconfig name -> identity
    "operator": OPERATOR,
    # A CI job that may patch releases (labels, annotations) but holds no `approve`: admission must
    # still refuse its approvals, however it names itself.
    "ci-deployer": ServiceAccountIdentity("ci", "ci-deployer", "local-ci-deployer"),
    # Flux's applier, bound to the shipped role for filing from Git on a requester's behalf.
    "kustomize-controller": ServiceAccountIdentity("flux-system", "kustomize-controller", "hotfix-gitops-requester"),
}

# Local only: the CI job's rights. Shipped roles (crds/rbac.yaml, the chart) are applied from the repository.
CI_DEPLOYER_ROLE: dict[str, Any] = {
    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "local-ci-deployer"},
    "rules": [{"apiGroups": ["hotfix.dev"], "resources": ["hotfixreleases"],
               "verbs": ["get", "list", "watch", "patch"]}],
}


def identity_manifests() -> list[dict[str, Any]]:
    """The namespaces and ServiceAccounts behind the service-account identities."""
    namespaces = sorted({sa.namespace for sa in SERVICE_ACCOUNTS.values()})
    return [
        *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in namespaces),
        *({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa.name, "namespace": sa.namespace}}
          for sa in SERVICE_ACCOUNTS.values()),
    ]


def role_bindings() -> list[dict[str, Any]]:
    """The local users' groups and the service accounts, bound to their roles."""
    groups = [
        cluster_role_binding("local-requesters", "hotfix-requester", group="hotfix:requesters"),
        cluster_role_binding("local-approvers", "hotfix-approver", group="hotfix:approvers"),
        cluster_role_binding("local-requesters-view", "view", group="hotfix:requesters"),
        cluster_role_binding("local-approvers-view", "view", group="hotfix:approvers"),
    ]
    accounts = [
        cluster_role_binding(sa.name if sa is OPERATOR else f"local-{sa.name}", sa.cluster_role, service_account=sa)
        for sa in SERVICE_ACCOUNTS.values()
    ]
    return [CI_DEPLOYER_ROLE, *groups, *accounts]


def cluster_role_binding(name: str, role: str, *, group: str | None = None,
                         service_account: ServiceAccountIdentity | None = None) -> dict[str, Any]:
    if group:
        subject = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}
    elif service_account:
        subject = {"kind": "ServiceAccount", "name": service_account.name, "namespace": service_account.namespace}
    else:
        raise ValueError(f"binding {name} needs a group or a service account")
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [subject],
    }
