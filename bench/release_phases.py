"""When a HotfixRelease reached each phase, seen through a watch on the real API server. The benchmarks
wait on this, not on `kubectl get` every few milliseconds: each kubectl start costs tens of milliseconds of
CPU, and on this machine's two cores a poller would slow the operator it measures."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config, watch


@dataclass
class ReleasePhases:
    kubeconfig: str
    namespace: str
    name: str = "hf"
    # phase -> when the watch first showed it (time.monotonic())
    seen: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> ReleasePhases:
        threading.Thread(target=self._follow, name=f"phases-{self.namespace}", daemon=True).start()
        time.sleep(0.2)  # the watch is open before the caller acts
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _follow(self) -> None:
        custom = client.CustomObjectsApi(config.new_client_from_config(config_file=self.kubeconfig))
        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(
                        custom.list_namespaced_custom_object, "hotfix.dev", "v1alpha1", self.namespace,
                        "hotfixreleases", field_selector=f"metadata.name={self.name}", timeout_seconds=5):
                    if self._stop.is_set():
                        return
                    self._on(event.get("object"))
            except Exception:  # the API server went away, or a stream broke: list again
                time.sleep(0.1)

    def _on(self, release: Any) -> None:
        phase = ((release or {}).get("status") or {}).get("phase") if isinstance(release, dict) else None
        if phase:
            self.seen.setdefault(phase, time.monotonic())

    def wait(self, phases: set[str], timeout: float = 180) -> tuple[str, float]:
        """The first of `phases` the release reached, and when it was seen; waits up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reached = sorted((self.seen[p], p) for p in phases if p in self.seen)
            if reached:
                return reached[0][1], reached[0][0]
            time.sleep(0.01)
        raise SystemExit(f"timed out waiting for {sorted(phases)} in {self.namespace}")
