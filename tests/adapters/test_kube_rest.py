"""The reconciles' request path: REST paths, credentials read at each request, refusals as the client's
ApiException with the API server's message."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from hotfix_operator.adapters.kube_rest import KubeRest, cluster_path, namespaced_path
from tests.support.fake_wire import serving


def test_paths_put_the_core_group_under_api_and_the_others_under_apis() -> None:
    assert namespaced_path("v1", "shop", "pods") == "/api/v1/namespaces/shop/pods"
    assert namespaced_path("hotfix.dev/v1alpha1", "shop", "hotfixreleases", "r", "status") == \
        "/apis/hotfix.dev/v1alpha1/namespaces/shop/hotfixreleases/r/status"
    assert cluster_path("authorization.k8s.io/v1", "subjectaccessreviews") == \
        "/apis/authorization.k8s.io/v1/subjectaccessreviews"
    # names are the API server's to validate; a hostile one cannot climb out of its collection
    assert namespaced_path("v1", "shop", "services", "../../secrets") == \
        "/api/v1/namespaces/shop/services/..%2F..%2Fsecrets"


def test_a_read_sends_no_body_and_asks_for_json_with_the_token_as_it_is_now() -> None:
    with serving() as (fake, api):
        rest = KubeRest(api)
        rest.get("/api/v1/namespaces/shop/pods", labelSelector="app=checkout,tier in (web)")
        api.configuration.api_key["authorization"] = "Bearer rotated"  # the client's refresh hook did this
        rest.get("/api/v1/namespaces/shop/pods")
    first, second = fake.seen
    assert first.path == "/api/v1/namespaces/shop/pods?labelSelector=app%3Dcheckout%2Ctier+in+%28web%29"
    assert first.body is None and "Content-Type" not in first.headers and first.headers["Accept"] == "application/json"
    assert (first.headers["Authorization"], second.headers["Authorization"]) == ("Bearer s3cret", "Bearer rotated")


def test_a_refusal_raises_the_clients_exception_with_the_servers_status_and_message() -> None:
    with serving() as (fake, api):
        fake.answers.append((422, {"kind": "Status", "message": "spec.selector: Invalid value"}))
        with pytest.raises(ApiException) as refused:
            KubeRest(api).write("PATCH", "/api/v1/namespaces/shop/services/checkout", [{"op": "test"}])
    assert refused.value.status == 422 and "spec.selector: Invalid value" in str(refused.value.body)
    assert fake.seen[0].headers["Content-Type"] == "application/json"
