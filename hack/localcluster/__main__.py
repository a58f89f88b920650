"""python -m localcluster up|down|status [--dir .local]

`up` starts the control plane in a background supervisor and returns once it is ready;
`up --foreground` runs the supervisor in this terminal (Ctrl-C stops everything);
`down` stops the supervisor, which stops every component it started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from localcluster.cluster import LocalCluster, log


def _supervise(workdir: Path) -> int:
    cluster = LocalCluster(workdir)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    cluster.start()
    (workdir / "supervisor.pid").write_text(str(os.getpid()))
    try:
        while not stopping:
            cluster.check_alive()
            time.sleep(0.5)
    finally:
        log("stopping control plane")
        cluster.stop()
        (workdir / "supervisor.pid").unlink(missing_ok=True)
    return 0


def _running_pid(workdir: Path) -> int | None:
    try:
        pid = int((workdir / "supervisor.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _up(workdir: Path) -> int:
    if _running_pid(workdir):
        log(f"already running (kubeconfig {workdir / 'kubeconfig'})")
        return 0
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cluster.json").unlink(missing_ok=True)
    log_path = workdir / "supervisor.log"
    with log_path.open("wb") as out:
        child = subprocess.Popen([sys.executable, "-m", "localcluster", "up", "--foreground", "--dir", str(workdir)],
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
    deadline = time.monotonic() + 1800  # the first run builds the binaries
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(log_path.read_text(), file=sys.stderr)
            log(f"failed to start (exit {child.returncode}); logs in {workdir / 'logs'}")
            return 1
        if (workdir / "cluster.json").exists() and _running_pid(workdir):
            print(log_path.read_text().strip())
            return 0
        time.sleep(0.3)
    child.terminate()
    return 1


def _down(workdir: Path) -> int:
    pid = _running_pid(workdir)
    if pid is None:
        log("not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    for _ in range(150):
        if _running_pid(workdir) is None:
            log("stopped")
            return 0
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)  # its children die with it (PR_SET_PDEATHSIG)
    log("killed")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="localcluster")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", default=".local", type=Path)
    parser.add_argument("--foreground", action="store_true")
    args = parser.parse_args()
    workdir = args.dir.resolve()
    if args.command == "up":
        return _supervise(workdir) if args.foreground else _up(workdir)
    if args.command == "down":
        return _down(workdir)
    state = workdir / "cluster.json"
    if _running_pid(workdir) and state.exists():
        print(json.dumps(json.loads(state.read_text()), indent=2))
        return 0
    log("not running")
    return 1


if __name__ == "__main__":
    sys.exit(main())
