"""`kubectl hotfix` on the real control plane, as the real identities (their kubeconfigs in
.local/users): every verb, the API server's refusals as one line each, and `status --watch` read
through a pseudo-terminal while the operator runs a hotfix, with its exit codes."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster.cluster import LocalCluster
from localcluster.oci import PushedImage
from localcluster.signing import LOCAL_BUILDER, LocalSigner
from tests.integration.conftest import OperatorProcess, hotfix_manifest, whoami, with_local_registry
from tests.kube import Kube, wait_for
from tests.support.releases import COMMIT, SOURCE

PLUGIN = Path(sys.executable).parent / "kubectl-hotfix"
NAME = "checkout-hotfix"
POLICY = "ValidatingAdmissionPolicy 'hotfix-operator-approvals' with binding 'hotfix-operator-approvals' denied request"
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\r")


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def hotfix(cluster: LocalCluster, user: str, *args: str, stdin: str | None = None, timeout: float = 60) -> Ran:
    """`kubectl-hotfix --kubeconfig .local/users/<user>.kubeconfig ARGS`, the installed console script."""
    assert PLUGIN.exists(), f"{PLUGIN} is missing: pip install -e . (make deps) installs the console script"
    done = subprocess.run([str(PLUGIN), "--kubeconfig", str(cluster.user_kubeconfig(user)), *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, "NO_COLOR": "1"})
    return Ran(done.returncode, done.stdout, done.stderr)


def spec_file(tmp_path: Path, image: str, **spec: Any) -> Path:
    """The release as a requester writes it for the plugin: no requestedBy (the plugin fills it in)."""
    manifest = hotfix_manifest(image, NAME, **spec)
    del manifest["spec"]["requestedBy"]
    path = tmp_path / "hotfix.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def file_as_alice(cluster: LocalCluster, tmp_path: Path, ns: str, image: str, **spec: Any) -> None:
    done = hotfix(cluster, "alice", "create", "-n", ns, "-f", str(spec_file(tmp_path, image, **spec)))
    assert done.code == 0, done.err
    assert done.out.startswith(f"hotfixrelease.hotfix.dev/{NAME} created in {ns} as alice")


class PtyRun:
    """A command on a pseudo-terminal (160x50), read in the background, as a person's terminal shows it."""

    def __init__(self, argv: list[str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                                     env={**env, "TERM": "xterm-256color"})
        os.close(slave)
        self.master = master
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the other side closed
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    @property
    def raw(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    @property
    def screen_text(self) -> str:
        return ANSI.sub("", self.raw)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=5)
        os.close(self.master)
        return code


# -- create --------------------------------------------------------------------------------------------


def test_create_dry_run_prints_the_manifest_in_your_name_and_sends_nothing(
        cluster: LocalCluster, kube: Kube, namespace: str, tmp_path: Path) -> None:
    image = "registry.example.com/shop/checkout@sha256:" + "ab" * 32
    done = hotfix(cluster, "alice", "create", "-n", namespace, "-f", str(spec_file(tmp_path, image)), "--dry-run")
    assert done.code == 0, done.err
    manifest = yaml.safe_load(done.out)
    assert manifest["spec"]["requestedBy"] == "alice", "filled in from the SelfSubjectReview"
    assert manifest["metadata"] == {"name": NAME, "namespace": namespace}
    as_json = hotfix(cluster, "alice", "create", "-n", namespace, "-f", str(spec_file(tmp_path, image)), "--dry-run",
                     "-o", "json")
    assert json.loads(as_json.out) == manifest
    assert kube.kubectl("get", "hfr", "-n", namespace, "-o", "name") == "", "nothing was sent"


def test_create_from_flags_names_each_mistake_before_sending_anything(
        cluster: LocalCluster, kube: Kube, namespace: str) -> None:
    done = hotfix(cluster, "alice", "create", "-n", namespace, "--version", "4.1", "--commit", "a8b1963",
                  "--severity", "P2", "--risk", "medium", "--deployment", "checkout", "--service", "checkout",
                  "--container", "app", "--image", "registry.example.com/shop/checkout:4.1.2",
                  "--source-repo", SOURCE, "--ticket", "http://tracker.example.com/INC-1")
    assert done.code == 2
    lines = done.err.splitlines()
    assert "error: spec.justification: is required (--justification)" in lines
    assert any(line.startswith("error: spec.version: version must look like 4.1.2") for line in lines)
    assert any(line.startswith("error: spec.commitSha: commitSha must be the full 40-character") for line in lines)
    assert any(line.startswith("error: spec.severity: severity must be P0 or P1") for line in lines)
    assert any(line.startswith("error: spec.artifact.image: image must be pinned by digest") for line in lines)
    assert any(line.startswith("error: spec.ticketUrl: ticketUrl must be an https:// link") for line in lines)
    assert lines[-1] == "error: nothing was sent: fix the 6 problem(s) above"
    assert kube.kubectl("get", "hfr", "-n", namespace, "-o", "name") == ""


def test_create_files_the_release_as_alice_and_refuses_someone_elses_name(
        cluster: LocalCluster, kube: Kube, namespace: str, tmp_path: Path) -> None:
    image = "registry.example.com/shop/checkout@sha256:" + "ab" * 32
    as_bob = spec_file(tmp_path, image)
    manifest = yaml.safe_load(as_bob.read_text())
    manifest["spec"]["requestedBy"] = "bob"
    as_bob.write_text(yaml.safe_dump(manifest))
    refused = hotfix(cluster, "alice", "create", "-n", namespace, "-f", str(as_bob))
    assert refused.code == 2
    assert "error: spec.requestedBy: must be your own user name, alice, not bob" in refused.err
    file_as_alice(cluster, tmp_path, namespace, image)
    assert kube.release(namespace, NAME)["spec"]["requestedBy"] == "alice"
    again = hotfix(cluster, "alice", "create", "-n", namespace, "-f", str(spec_file(tmp_path, image)))
    assert again.code == 1
    assert "(409 AlreadyExists)" in again.err and "give another name" in again.err


# -- approve, reject, abort ----------------------------------------------------------------------------


@pytest.fixture
def filed(cluster: LocalCluster, kube: Kube, namespace: str, tmp_path: Path) -> str:
    """A release alice filed through the plugin (no operator: admission alone decides what follows)."""
    file_as_alice(cluster, tmp_path, namespace, "registry.example.com/shop/checkout@sha256:" + "ab" * 32)
    return namespace


def one_line_refusal(done: Ran, code: int, reason: str, message: str) -> None:
    assert done.code == 1, done
    assert done.out == ""
    [line] = done.err.splitlines()
    assert f"the API server refused ({code} {reason}): " in line, line
    assert message in line, line


def test_each_refusal_is_the_api_servers_message_on_one_line(cluster: LocalCluster, kube: Kube, filed: str) -> None:
    ns = filed
    before = kube.release(ns, NAME)["spec"]
    mallory = hotfix(cluster, "mallory", "approve", NAME, "-n", ns)
    one_line_refusal(mallory, 403, "Forbidden", f'User "mallory" cannot patch resource "hotfixreleases" in API group '
                                                f'"hotfix.dev" in the namespace "{ns}"; ask an administrator to bind '
                                                f"you to hotfix-requester")
    own = hotfix(cluster, "alice", "approve", NAME, "-n", ns, "--comment", "lgtm")
    one_line_refusal(own, 403, "Forbidden", f"{POLICY}: alice requested this hotfix and cannot approve or reject it; "
                                            "ask another approver")
    no_comment = hotfix(cluster, "bob", "reject", NAME, "-n", ns, "--comment", "  ")
    assert no_comment.code == 2
    assert no_comment.err.strip() == ("error: reject needs --comment: say why, so the requester knows what to "
                                      "change")
    abort = hotfix(cluster, "mallory", "abort", NAME, "-n", ns, "--reason", "I say so")
    one_line_refusal(abort, 403, "Forbidden", 'User "mallory" cannot patch resource "hotfixreleases"')
    not_in_group = hotfix(cluster, "dave", "approve", NAME, "-n", ns, "--group", "hotfix-security")
    one_line_refusal(not_in_group, 403, "Forbidden", "you approve as a member of hotfix-security, but the API server "
                                                     "does not place dave in that group")
    ci = hotfix(cluster, "ci-deployer", "approve", NAME, "-n", ns)
    one_line_refusal(ci, 403, "Forbidden", "service accounts (GitOps tools, CI jobs) cannot approve or reject a hotfix")
    missing = hotfix(cluster, "bob", "approve", "no-such-release", "-n", ns)
    one_line_refusal(missing, 404, "NotFound", f"check the name and namespace: kubectl hotfix list -n {ns}")
    assert kube.release(ns, NAME)["spec"] == before, "a refused write changed nothing"


def test_approve_reject_and_abort_record_who_as_the_api_server_knows_them(
        cluster: LocalCluster, kube: Kube, filed: str) -> None:
    ns = filed
    assert hotfix(cluster, "bob", "approve", NAME, "-n", ns, "--comment", "reviewed the diff").code == 0
    rejected = hotfix(cluster, "carol", "reject", NAME, "-n", ns, "--comment", "needs a test")
    assert rejected.code == 0, rejected.err
    assert rejected.out.startswith(f"hotfixrelease.hotfix.dev/{NAME} rejected by carol")
    bob, carol = whoami(kube, "bob"), whoami(kube, "carol")
    assert kube.release(ns, NAME)["spec"]["approval"]["approvals"] == [
        {"approver": "bob", "decision": "Approve", "comment": "reviewed the diff", "groups": list(bob.groups)},
        {"approver": "carol", "decision": "Reject", "comment": "needs a test", "groups": list(carol.groups)},
    ]
    twice = hotfix(cluster, "bob", "approve", NAME, "-n", ns)
    one_line_refusal(twice, 422, "Invalid", "Duplicate value")
    aborted = hotfix(cluster, "alice", "abort", NAME, "-n", ns, "--reason", "wrong commit")
    assert aborted.code == 0, aborted.err
    assert kube.release(ns, NAME)["spec"]["abort"] == {"by": "alice", "reason": "wrong commit"}


# -- status, list, postmortems, through a whole hotfix -------------------------------------------------


def test_status_watch_on_a_terminal_shows_each_phase_and_exits_0_on_success(
        cluster: LocalCluster, kube: Kube, quickstart: str, hotfix_image: PushedImage,
        running_operator: OperatorProcess, tmp_path: Path) -> None:
    ns = quickstart
    file_as_alice(cluster, tmp_path, ns, hotfix_image.reference, rollout={"bakeSeconds": 3})
    watching = PtyRun([str(PLUGIN), "--kubeconfig", str(cluster.user_kubeconfig("bob")), "status", NAME, "-n", ns,
                       "--watch", "--timeout", "3m"])
    wait_for("the live view to show AwaitingApproval", lambda: "AwaitingApproval" in watching.screen_text, 60)
    status = hotfix(cluster, "bob", "status", NAME, "-n", ns)
    assert status.code == 0
    for part in ("Phase      AwaitingApproval", "Approvals  0/1", "SLA", "left (deadline", "Timeline", "filed",
                 "Conditions", "Next       needs 1 more approval(s)"):
        assert part in status.out, (part, status.out)
    assert hotfix(cluster, "bob", "approve", NAME, "-n", ns, "--comment", "reviewed").code == 0
    code = watching.wait(timeout=180)
    screen = watching.screen_text
    assert code == 0, screen[-3000:]
    assert "\x1b[" in watching.raw, "a terminal gets colours and redraws"
    seen = [p for p in ("AwaitingApproval", "Deploying", "Promoted", "Finalizing", "Succeeded") if p in screen]
    assert seen == ["AwaitingApproval", "Deploying", "Promoted", "Finalizing", "Succeeded"], screen[-3000:]
    assert "approved by bob" in screen and "traffic on green" in screen and "nothing: the hotfix is live" in screen

    listed = json.loads(hotfix(cluster, "carol", "list", "-A", "-o", "json").out)
    mine = next(r for r in listed if r["namespace"] == ns)
    assert (mine["name"], mine["phase"], mine["target"], mine["approvals"]) == (NAME, "Succeeded", "checkout", "1/1")
    assert mine["sla"]["state"] == "met"
    table = hotfix(cluster, "carol", "list", "-n", ns).out.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "TARGET", "APPROVALS", "SLA", "AGE"]
    assert table[1].split()[:5] == [NAME, "Succeeded", "checkout", "1/1", "met"]
    owed = hotfix(cluster, "carol", "postmortems", "-n", ns, "--missing")
    assert owed.code == 1, "a promoted hotfix owes a post-mortem, and none is complete here (no GitHub)"
    assert owed.out.splitlines()[1].split()[:3] == [NAME, "Succeeded", "v4.1.2-hotfix.1"]
    as_yaml = yaml.safe_load(hotfix(cluster, "carol", "postmortems", "-n", ns, "-o", "yaml").out)
    assert [(r["name"], r["complete"]) for r in as_yaml] == [(NAME, False)]


def test_status_watch_exits_1_on_a_rejection_with_one_plain_line_per_change(
        cluster: LocalCluster, kube: Kube, quickstart: str, hotfix_image: PushedImage,
        running_operator: OperatorProcess, tmp_path: Path) -> None:
    ns = quickstart
    file_as_alice(cluster, tmp_path, ns, hotfix_image.reference)
    kube.wait_phase(ns, NAME, "AwaitingApproval")
    watch = subprocess.Popen([str(PLUGIN), "--kubeconfig", str(cluster.user_kubeconfig("alice")), "status", NAME,
                              "-n", ns, "--watch", "--timeout", "90s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    time.sleep(1)
    assert hotfix(cluster, "carol", "reject", NAME, "-n", ns, "--comment", "wrong commit").code == 0
    out, err = watch.communicate(timeout=90)
    assert watch.returncode == 1, (out, err)
    lines = out.splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d  AwaitingApproval  needs 1 more approval\(s\).*", lines[0]), lines
    assert re.fullmatch(r"\d\d:\d\d:\d\d  Rejected          .*carol.*", lines[-1]), lines
    assert "\x1b[" not in out, "no colours or redraws when the output is not a terminal"
    assert len(lines) == len(set(lines)), "a line only when the phase or the message changes"


def test_status_watch_exits_1_when_an_abort_rolls_back(
        cluster: LocalCluster, kube: Kube, quickstart: str, hotfix_image: PushedImage,
        running_operator: OperatorProcess, tmp_path: Path) -> None:
    ns = quickstart
    file_as_alice(cluster, tmp_path, ns, hotfix_image.reference, rollout={"bakeSeconds": 60})
    kube.wait_phase(ns, NAME, "AwaitingApproval")
    assert hotfix(cluster, "bob", "approve", NAME, "-n", ns).code == 0
    kube.wait_phase(ns, NAME, "Promoted")
    assert hotfix(cluster, "alice", "abort", NAME, "-n", ns, "--reason", "error rate is up").code == 0
    done = hotfix(cluster, "alice", "status", NAME, "-n", ns, "--watch", "--timeout", "90s", timeout=120)
    assert done.code == 1, done
    assert done.out.splitlines()[-1].split()[1] == "RolledBack"
    final = json.loads(hotfix(cluster, "alice", "status", NAME, "-n", ns, "-o", "json").out)
    assert final["phase"] == "RolledBack" and final["abort"] == {"by": "alice", "reason": "error rate is up"}


def test_status_watch_exits_2_on_timeout(
        cluster: LocalCluster, kube: Kube, quickstart: str, hotfix_image: PushedImage,
        running_operator: OperatorProcess, tmp_path: Path) -> None:
    file_as_alice(cluster, tmp_path, quickstart, hotfix_image.reference)
    kube.wait_phase(quickstart, NAME, "AwaitingApproval")  # and there it stays: nobody approves
    started = time.monotonic()
    done = hotfix(cluster, "bob", "status", NAME, "-n", quickstart, "--watch", "--timeout", "2s")
    assert done.code == 2, done
    assert 2 <= time.monotonic() - started < 20
    assert (f"error: timed out waiting for {quickstart}/{NAME} to finish: it is AwaitingApproval; "
            f"kubectl hotfix status {NAME} -n {quickstart} shows where it stands") in done.err


# -- kubectl finds it, verify delegates ------------------------------------------------------------------


def test_kubectl_runs_it_as_a_plugin_with_the_contexts_namespace(
        cluster: LocalCluster, filed: str, tmp_path: Path) -> None:
    config = json.loads(cluster.user_kubeconfig("bob").read_text())
    config["contexts"][0]["context"]["namespace"] = filed
    kubeconfig = tmp_path / "bob.kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    env = {**os.environ, "PATH": f"{PLUGIN.parent}{os.pathsep}{os.environ['PATH']}", "KUBECONFIG": str(kubeconfig)}
    plugins = subprocess.run([str(cluster.toolchain.kubectl), "plugin", "list"], capture_output=True, text=True,
                             env=env, timeout=30)
    assert str(PLUGIN) in plugins.stdout
    done = subprocess.run([str(cluster.toolchain.kubectl), "hotfix", "list"], capture_output=True, text=True,
                          env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split()[0] == NAME, "the namespace came from the context"


def test_verify_is_the_operators_gate(cluster: LocalCluster, hotfix_image: PushedImage, signer: LocalSigner,
                                      tmp_path: Path) -> None:
    policy = {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": "shop"},
              "spec": with_local_registry({"namespaceSelector": {}, "provenance": {
                  "trustedKeys": [{"name": "release", "publicKey": signer.public_pem}],
                  "requireTransparencyLog": False, "allowedBuilders": [LOCAL_BUILDER],
                  "allowedSourceRepositories": [SOURCE]}}, cluster.registry_host)}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    args = ["verify", hotfix_image.reference, "--source-repo", SOURCE, "--policy", str(tmp_path / "policy.yaml"),
            "--registry-ca-file", str(cluster.ca_file)]
    passed = hotfix(cluster, "alice", *args, "--commit", COMMIT)
    assert passed.code == 0, passed.err
    assert passed.out.startswith(f"PASS  {hotfix_image.reference}  (policy shop)")
    assert hotfix(cluster, "alice", *args, "--commit", "c" * 40).code == 1
