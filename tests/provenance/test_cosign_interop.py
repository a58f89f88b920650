"""The real cosign signs and attests; discover() finds it in the real registry; the verifier judges it.

cosign runs offline with a key pair and `--tlog-upload=false`: no Fulcio, no Rekor. Such material
carries no transparency-log entry, so the test policy sets `requireTransparencyLog: false` (and has
no trusted root); with the default `requireTransparencyLog: true` the same material is refused with
TlogInvalid, as one test below shows.

Both of cosign's publishing formats are exercised: the legacy `sha256-<hex>.sig` / `.att` tags
(`--new-bundle-format=false`) and Sigstore bundles as OCI 1.1 referrers (cosign 3's default), which
on this registry (no referrers API) land in the `sha256-<hex>` fallback index.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hotfix_operator.adapters.discovery import cosign_tag, discover
from hotfix_operator.adapters.registry import DigestMismatchError, ImageReference, RegistryClient
from hotfix_operator.provenance import (
    ProvenancePolicy,
    Reason,
    ReleaseRequest,
    load_policy,
    verify_provenance,
)
from localcluster.cluster import LocalCluster
from localcluster.oci import PushedImage, Pusher, digest_of
from tests.provenance.cosign import Cosign, KeyPair, TamperingRegistry, allow_loopback_only, cosign_binary
from tests.support.provenance import refused

pytestmark = pytest.mark.cluster

SOURCE_REPOSITORY = "github.com/acme/checkout"
COMMIT = "3f786850e387550fdab836ed7e6dc881de23001b"
OTHER_COMMIT = "a8b1963f0a9d5d8c6a8b7c0e5f2d1e3c4b5a6978"
BUILDER = "https://github.com/acme/release-pipeline/.github/workflows/build.yml"
BUILDER_ID = BUILDER + "@refs/tags/v2.3.0"
SLSA_V02 = "https://slsa.dev/provenance/v0.2"
SLSA_V1 = "https://slsa.dev/provenance/v1"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
IN_TOTO = "application/vnd.in-toto+json"

# .sig manifest (its payload is derived, not downloaded), .att manifest, .att blob,
# referrers API (404 here), referrers fallback tag (404: nothing attached that way).
LEGACY_REQUESTS = 5


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replaces the package's guard for this module: the local registry is on loopback, nothing else is allowed."""
    allow_loopback_only(monkeypatch)


def slsa_v02_predicate(commit: str) -> dict[str, Any]:
    source = f"git+https://{SOURCE_REPOSITORY}@refs/tags/v4.1.2"
    return {
        "builder": {"id": BUILDER_ID},
        "buildType": "https://github.com/acme/release-pipeline/container@v1",
        "invocation": {
            "configSource": {"uri": source, "digest": {"sha1": commit}, "entryPoint": ".github/workflows/release.yml"}
        },
        "materials": [{"uri": source, "digest": {"sha1": commit}}],
    }


def slsa_v1_predicate(commit: str) -> dict[str, Any]:
    return {
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {
                "workflow": {
                    "ref": "refs/tags/v4.1.2",
                    "repository": f"https://{SOURCE_REPOSITORY}",
                    "path": ".github/workflows/release.yml",
                }
            },
            "resolvedDependencies": [
                {"uri": f"git+https://{SOURCE_REPOSITORY}@refs/tags/v4.1.2", "digest": {"gitCommit": commit}}
            ],
        },
        "runDetails": {"builder": {"id": BUILDER_ID}, "metadata": {"invocationId": "1234567890/attempts/1"}},
    }


@dataclass(frozen=True)
class Flavour:
    """One way of publishing: cosign's --type for the predicate, and legacy tags or bundles."""

    name: str
    cosign_type: str
    predicate_type: str
    predicate: Callable[[str], dict[str, Any]]
    bundle: bool


FLAVOURS = [
    Flavour("legacy-slsa02", "slsaprovenance", SLSA_V02, slsa_v02_predicate, bundle=False),
    Flavour("legacy-slsa1", "slsaprovenance1", SLSA_V1, slsa_v1_predicate, bundle=False),
    Flavour("bundle-slsa02", "slsaprovenance", SLSA_V02, slsa_v02_predicate, bundle=True),
    Flavour("bundle-slsa1", "slsaprovenance1", SLSA_V1, slsa_v1_predicate, bundle=True),
]
LEGACY = FLAVOURS[0]


@dataclass(frozen=True)
class Published:
    image: PushedImage
    files: dict[str, bytes]

    @property
    def reference(self) -> ImageReference:
        return ImageReference.parse(self.image.reference)


class Publisher:
    """Pushes small images and has cosign sign and attest them."""

    def __init__(self, pusher: Pusher, cosign: Cosign) -> None:
        self.pusher = pusher
        self.cosign = cosign

    def image(self, name: str, repository: str | None = None) -> Published:
        files = {"app": f"interop {name}\n".encode()}
        return Published(self.pusher.push_image(repository or f"provenance/interop/{name}", "v1", files), files)

    def signed(self, name: str, flavour: Flavour, key: KeyPair, commit: str = COMMIT) -> Published:
        published = self.image(name)
        self.cosign.sign(published.image.reference, key, bundle=flavour.bundle)
        self.cosign.attest(
            published.image.reference,
            key,
            predicate=flavour.predicate(commit),
            predicate_type=flavour.cosign_type,
            bundle=flavour.bundle,
        )
        return published


@pytest.fixture(scope="module")
def cosign(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Cosign:
    return Cosign(cosign_binary(), tmp_path_factory.mktemp("cosign"), cluster.ca_file)


@pytest.fixture(scope="module")
def release_key(cosign: Cosign) -> KeyPair:
    return cosign.generate_key_pair("release")


@pytest.fixture(scope="module")
def intruder_key(cosign: Cosign) -> KeyPair:
    return cosign.generate_key_pair("intruder")


@pytest.fixture(scope="module")
def publisher(cluster: LocalCluster, cosign: Cosign) -> Iterator[Publisher]:
    with Pusher(cluster.registry_host, cluster.ca_file) as pusher:
        yield Publisher(pusher, cosign)


@pytest.fixture(scope="module")
def signed(publisher: Publisher, release_key: KeyPair) -> dict[str, Published]:
    """One image per flavour, signed and attested with the trusted key."""
    return {flavour.name: publisher.signed(flavour.name, flavour, release_key) for flavour in FLAVOURS}


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[RegistryClient]:
    with RegistryClient(ca_file=str(cluster.ca_file)) as client:
        yield client


def trusting(key: KeyPair, **changes: Any) -> ProvenancePolicy:
    spec: dict[str, Any] = {
        "trustedKeys": [{"name": "release-ci", "publicKey": key.public_pem}],
        # Offline cosign with --tlog-upload=false writes no Rekor entry; see the module docstring.
        "requireTransparencyLog": False,
        "allowedBuilders": [BUILDER],
        "allowedSourceRepositories": [SOURCE_REPOSITORY],
        "requireImageSignature": True,
    }
    spec.update(changes)
    return load_policy(spec)


def request(published: Published, commit: str = COMMIT) -> ReleaseRequest:
    return ReleaseRequest(image=published.image.reference, commit_sha=commit, source_repository=SOURCE_REPOSITORY)


# ---------------------------------------------------------------------------------------------
# Accepted: exactly what cosign published, for its digest, commit, builder and repository
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS, ids=lambda f: f.name)
def test_cosign_material_is_found_and_verifies(
    client: RegistryClient, signed: dict[str, Published], release_key: KeyPair, flavour: Flavour
) -> None:
    published = signed[flavour.name]

    material = discover(client, published.reference)

    if flavour.bundle:
        assert (len(material.signature_layers), len(material.attestation_layers), len(material.bundles)) == (0, 0, 2)
    else:
        assert (len(material.signature_layers), len(material.attestation_layers), len(material.bundles)) == (1, 1, 0)
        assert client.request_count == LEGACY_REQUESTS
    result = verify_provenance(material, request(published), trusting(release_key))
    assert result.ok, result.message
    summary = result.summary
    assert summary is not None
    assert (summary.builder_id, summary.source_repository, summary.commit_sha) == (
        BUILDER_ID,
        SOURCE_REPOSITORY,
        COMMIT,
    )
    assert summary.image_signature_verified
    assert flavour.predicate_type in summary.predicate_types
    if flavour.bundle:
        assert COSIGN_SIGN_PREDICATE in summary.predicate_types  # cosign 3 signs images with a statement
    assert {signer.key_name for signer in summary.signers} == {"release-ci"}
    assert summary.ignored == ()


def test_legacy_signatures_written_as_referrers_are_found(
    client: RegistryClient, publisher: Publisher, cosign: Cosign, release_key: KeyPair
) -> None:
    """`cosign sign --registry-referrers-mode=oci-1-1`: the simple-signing layer in a referrer manifest."""
    published = publisher.image("legacy-referrer")
    cosign.sign(published.image.reference, release_key, bundle=False, referrers_mode="oci-1-1")
    flavour = FLAVOURS[3]
    cosign.attest(
        published.image.reference,
        release_key,
        predicate=flavour.predicate(COMMIT),
        predicate_type=flavour.cosign_type,
        bundle=True,
    )

    material = discover(client, published.reference)

    assert (len(material.signature_layers), len(material.attestation_layers), len(material.bundles)) == (1, 0, 1)
    result = verify_provenance(material, request(published), trusting(release_key))
    assert result.ok, result.message
    assert result.summary is not None and result.summary.image_signature_verified


# ---------------------------------------------------------------------------------------------
# Refused, each for its own reason
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS, ids=lambda f: f.name)
def test_another_commit_is_refused(
    client: RegistryClient, signed: dict[str, Published], release_key: KeyPair, flavour: Flavour
) -> None:
    published = signed[flavour.name]
    result = verify_provenance(
        discover(client, published.reference), request(published, OTHER_COMMIT), trusting(release_key)
    )
    refused(result, Reason.COMMIT_MISMATCH, "provenance commit 3f78685", "a8b1963")


def test_the_transparency_log_requirement_refuses_offline_key_signatures(
    client: RegistryClient, signed: dict[str, Published], release_key: KeyPair, production_root: str
) -> None:
    """With the policy default (requireTransparencyLog: true), a key signature without a Rekor entry is refused."""
    published = signed[LEGACY.name]
    policy = trusting(release_key, requireTransparencyLog=True, trustedRoot=production_root)
    result = verify_provenance(discover(client, published.reference), request(published), policy)
    refused(result, Reason.TLOG_PROOF_MISSING, "no transparency log entry")


@pytest.mark.parametrize("bundle", [False, True], ids=["legacy", "bundle"])
def test_material_signed_with_another_key_is_refused(
    client: RegistryClient,
    publisher: Publisher,
    release_key: KeyPair,
    intruder_key: KeyPair,
    production_root: str,
    bundle: bool,
) -> None:
    flavour = FLAVOURS[2] if bundle else LEGACY
    published = publisher.signed(f"intruder-{flavour.name}", flavour, intruder_key)
    material = discover(client, published.reference)

    # Without a transparency-log entry nothing names the key that signed, so "valid signature by
    # a stranger" cannot be told from "invalid signature": the verifier says SignatureInvalid.
    refused(
        verify_provenance(material, request(published), trusting(release_key)),
        Reason.SIGNATURE_INVALID,
        "does not verify with any trusted key (release-ci)",
    )
    # UntrustedKey is the verdict when the policy trusts no key at all (here: keyless identities only).
    keyless_only = trusting(
        release_key,
        trustedKeys=[],
        keylessIdentities=[
            {"issuer": {"exact": "https://token.actions.githubusercontent.com"}, "subject": {"exact": BUILDER_ID}}
        ],
        trustedRoot=production_root,
    )
    refused(verify_provenance(material, request(published), keyless_only), Reason.UNTRUSTED_KEY, "trusts no keys")


def test_an_attestation_replayed_onto_another_image_is_refused(
    client: RegistryClient, publisher: Publisher, signed: dict[str, Published], release_key: KeyPair
) -> None:
    """Image A's `.att` manifest copied, byte for byte, to image B's tag in the same repository."""
    source = signed[LEGACY.name]
    target = publisher.image("replay-target", repository=source.image.repository)
    attestation = client.get_manifest(source.reference, cosign_tag(source.image.digest, ".att"))
    publisher.pusher.push_manifest(target.image.repository, cosign_tag(target.image.digest, ".att"), attestation.raw)
    client.request_count = 0

    material = discover(client, target.reference)

    assert len(material.attestation_layers) == 1
    result = verify_provenance(material, request(target), trusting(release_key))
    refused(result, Reason.DIGEST_MISMATCH, f"is about {source.image.digest[:19]}", target.image.digest[:19])


def test_a_bundle_replayed_onto_another_image_is_refused(
    client: RegistryClient, publisher: Publisher, signed: dict[str, Published], release_key: KeyPair
) -> None:
    """A new referrer manifest whose subject is image B, carrying image A's provenance bundle."""
    source = signed["bundle-slsa1"]
    source_material = discover(client, source.reference)
    provenance_bundle = next(bundle for bundle in source_material.bundles if _is_slsa(bundle.blob))
    target = publisher.image("bundle-replay-target", repository=source.image.repository)
    pusher = publisher.pusher
    empty = pusher.push_blob(target.image.repository, b"{}")
    referrer = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": provenance_bundle.media_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [
                {
                    "mediaType": provenance_bundle.media_type,
                    "digest": provenance_bundle.digest,
                    "size": len(provenance_bundle.blob),
                }
            ],
            "subject": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": target.image.digest,
                "size": len(target.image.manifest),
            },
        }
    ).encode()
    pusher.push_manifest(target.image.repository, digest_of(referrer), referrer)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": digest_of(referrer),
                    "size": len(referrer),
                    "artifactType": provenance_bundle.media_type,
                }
            ],
        }
    ).encode()
    pusher.push_manifest(
        target.image.repository, cosign_tag(target.image.digest), index, "application/vnd.oci.image.index.v1+json"
    )

    material = discover(client, target.reference)

    assert [bundle.digest for bundle in material.bundles] == [provenance_bundle.digest]
    refused(verify_provenance(material, request(target), trusting(release_key)), Reason.DIGEST_MISMATCH)


def _is_slsa(bundle_blob: bytes) -> bool:
    envelope = json.loads(bundle_blob)["dsseEnvelope"]
    return json.loads(base64.b64decode(envelope["payload"]))["predicateType"] in (SLSA_V02, SLSA_V1)


# -- a copy of the legacy attestation, edited and republished the way someone with push access could


def republish_attestation(
    client: RegistryClient, publisher: Publisher, source: Published, case: str, edit: Callable[[bytes], bytes]
) -> Published:
    """Push the source image to its own repository, with an edited copy of the source's `.att`."""
    target = publisher.image(LEGACY.name, repository=f"provenance/interop/tampered-{case}")
    assert target.image.digest == source.image.digest  # same content, same digest, other repository
    manifest = json.loads(client.get_manifest(source.reference, cosign_tag(source.image.digest, ".att")).raw)
    (layer,) = manifest["layers"]
    edited = edit(client.get_blob(source.reference, layer["digest"]))
    pusher = publisher.pusher
    repository = target.image.repository
    pusher.push_blob(repository, client.get_blob(source.reference, manifest["config"]["digest"]))
    layer["digest"], layer["size"] = pusher.push_blob(repository, edited), len(edited)
    pusher.push_manifest(repository, cosign_tag(target.image.digest, ".att"), json.dumps(manifest).encode())
    return target


def edit_envelope(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def edit(blob: bytes) -> bytes:
        envelope = json.loads(blob)
        change(envelope)
        return json.dumps(envelope).encode()

    return edit


def edit_statement(envelope: dict[str, Any]) -> None:
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["materials"][0]["digest"]["sha1"] = OTHER_COMMIT
    statement["predicate"]["invocation"]["configSource"]["digest"]["sha1"] = OTHER_COMMIT
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()


def swap_payload_type(envelope: dict[str, Any]) -> None:
    envelope["payloadType"] = "application/vnd.dev.cosign.simplesigning.v1+json"


def duplicate_payload_key(blob: bytes) -> bytes:
    # {"payload": <signed>, ..., "payload": <edited>}: Go's decoder keeps the last, so a verifier
    # that checked the first would hand on something else. Refused before any signature check.
    envelope = json.loads(blob)
    edited = dict(envelope)
    edit_statement(edited)
    text = json.dumps(envelope)
    return (text[:-1] + f', "payload": {json.dumps(edited["payload"])}' + "}").encode()


def add_signature(envelope: dict[str, Any]) -> None:
    envelope["signatures"].append({"keyid": "second", "sig": envelope["signatures"][0]["sig"]})


TAMPERING = [
    ("edited-payload", edit_envelope(edit_statement), Reason.SIGNATURE_INVALID, "does not verify"),
    ("swapped-payload-type", edit_envelope(swap_payload_type), Reason.PAYLOAD_TYPE_NOT_ALLOWED, "payloadType"),
    ("duplicate-keys", duplicate_payload_key, Reason.MALFORMED_INPUT, "duplicate key 'payload'"),
    ("extra-signature", edit_envelope(add_signature), Reason.SIGNATURE_INVALID, "carries 2 signatures"),
]


@pytest.mark.parametrize(("case", "edit", "reason", "fragment"), TAMPERING, ids=[case[0] for case in TAMPERING])
def test_a_tampered_attestation_is_refused(
    client: RegistryClient,
    publisher: Publisher,
    signed: dict[str, Published],
    release_key: KeyPair,
    case: str,
    edit: Callable[[bytes], bytes],
    reason: Reason,
    fragment: str,
) -> None:
    target = republish_attestation(client, publisher, signed[LEGACY.name], case, edit)

    material = discover(client, target.reference)

    assert len(material.attestation_layers) == 1
    refused(verify_provenance(material, request(target), trusting(release_key)), reason, fragment)


def test_a_registry_serving_other_bytes_for_a_referrer_digest_is_refused(
    cluster: LocalCluster, signed: dict[str, Published]
) -> None:
    """A hostile registry: the referrer manifest requested by digest comes back with other bytes."""
    published = signed["bundle-slsa1"]
    with RegistryClient(ca_file=str(cluster.ca_file)) as direct:
        index = json.loads(direct.get_manifest(published.reference, cosign_tag(published.image.digest)).raw)
    referrer_digest = index["manifests"][0]["digest"]
    with TamperingRegistry(cluster.registry_host, cluster.ca_file).serving() as front:
        front.rules[f"/v2/{published.image.repository}/manifests/{referrer_digest}"] = lambda status, body: (
            status,
            body.replace(published.image.digest.encode(), signed[LEGACY.name].image.digest.encode()),
        )
        image = ImageReference(
            registry=front.host, repository=published.image.repository, digest=published.image.digest
        )
        with (
            RegistryClient(plain_http_hosts=frozenset({front.host})) as client,
            pytest.raises(DigestMismatchError) as caught,
        ):
            discover(client, image)
    assert referrer_digest in str(caught.value) and "refusing them" in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Cost: requests, wall and CPU time of discover + verify for a legacy signature + attestation
# ---------------------------------------------------------------------------------------------

COLD_RUNS = 5
WARM_RUNS = 20


@dataclass(frozen=True)
class Timing:
    discover_wall: float
    discover_cpu: float
    verify_wall: float
    verify_cpu: float


def timed(client: RegistryClient, image: ImageReference, wanted: ReleaseRequest, policy: ProvenancePolicy) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    material = discover(client, image)
    found_wall, found_cpu = time.perf_counter(), time.process_time()
    result = verify_provenance(material, wanted, policy)
    done_wall, done_cpu = time.perf_counter(), time.process_time()
    assert result.ok, result.message
    return Timing(found_wall - wall, found_cpu - cpu, done_wall - found_wall, done_cpu - found_cpu)


def medians_ms(samples: list[Timing]) -> dict[str, float]:
    def median(values: list[float]) -> float:
        return round(sorted(values)[len(values) // 2] * 1000, 2)

    return {
        "wall_ms": median([t.discover_wall + t.verify_wall for t in samples]),
        "cpu_ms": median([t.discover_cpu + t.verify_cpu for t in samples]),
        "discover_wall_ms": median([t.discover_wall for t in samples]),
        "discover_cpu_ms": median([t.discover_cpu for t in samples]),
        "verify_cpu_ms": median([t.verify_cpu for t in samples]),
    }


def test_requests_and_time_for_a_legacy_signature_and_attestation(
    cluster: LocalCluster,
    signed: dict[str, Published],
    release_key: KeyPair,
    record_property: Callable[[str, object], None],
) -> None:
    published = signed[LEGACY.name]
    policy, wanted = trusting(release_key), request(published)

    cold: list[Timing] = []
    for _ in range(COLD_RUNS):  # a new client each time: a new TLS connection
        with RegistryClient(ca_file=str(cluster.ca_file)) as client:
            cold.append(timed(client, published.reference, wanted, policy))
            assert client.request_count == LEGACY_REQUESTS
    warm: list[Timing] = []
    with RegistryClient(ca_file=str(cluster.ca_file)) as client:
        timed(client, published.reference, wanted, policy)  # connects
        for _ in range(WARM_RUNS):
            before = client.request_count
            warm.append(timed(client, published.reference, wanted, policy))
            assert client.request_count - before == LEGACY_REQUESTS

    numbers: dict[str, float] = {"requests": LEGACY_REQUESTS}
    numbers |= {f"cold_{name}": value for name, value in medians_ms(cold).items()}
    numbers |= {f"warm_{name}": value for name, value in medians_ms(warm).items()}
    for name, value in numbers.items():
        record_property(name, value)
    print(f"\ndiscover + verify, legacy .sig + .att (medians of {COLD_RUNS} cold / {WARM_RUNS} warm): {numbers}")
    # Loopback numbers; bounds generous enough for a loaded CI machine, tight enough to catch a regression.
    assert numbers["warm_wall_ms"] < 250 and numbers["cold_wall_ms"] < 1000
