"""adapters/check_http: one TLS context for every check request, still verifying."""

from __future__ import annotations

import ssl

import pytest

from hotfix_operator.adapters import check_http
from tests.support.check_targets import serving

pytestmark = pytest.mark.unit


def test_requests_share_one_tls_context_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []
    real = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        built.append(kwargs)  # httpx builds verify=True's context with it, loading the CA bundle
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    check_http.default_tls.cache_clear()
    with serving() as target:
        target.script("a", (200, "first"), (503, "second"))
        answers = [check_http.request("GET", f"{target.base}/a", timeout=5) for _ in range(3)]
    assert [(a.status, a.body) for a in answers] == [(200, "first"), (503, "second"), (503, "second")]
    assert len(built) == 1  # before: one per request, each loading the CA bundle
    check_http.default_tls.cache_clear()


def test_the_shared_context_verifies_certificates_and_hostnames() -> None:
    tls = check_http.default_tls()
    assert tls.verify_mode == ssl.CERT_REQUIRED
    assert tls.check_hostname
    assert tls.cert_store_stats()["x509_ca"] > 0  # the certifi bundle is loaded


def test_an_unverifiable_https_target_is_a_transport_error() -> None:
    with serving() as target, pytest.raises(check_http.CheckTransportError):
        # a plain-http server spoken to over TLS: the handshake fails, nothing is judged
        check_http.request("GET", f"https://127.0.0.1:{target.port}/a", timeout=5)
