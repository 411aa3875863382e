"""Running many workflows at once on one `treadle serve all --runtime docker`, and checking the engine afterwards.

Each case runs in a worker thread with its own client (the conformance
harness's run_case), all of them started as soon as the server is up, so the
suite's wall time is that of the slowest few workflows rather than their sum.
A test waits for its own case only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import conformance_harness
import docker
import grpc
from conformance_harness import Case, Outcome, Server, run_case

from treadle.admission.v1 import admission_pb2_grpc as adm_grpc
from treadle.client import SyncTreadleClient

# Workflows in flight at once: enough to overlap the engine's work, few enough for 2 cores.
CONCURRENCY = 6
CASE_TIMEOUT = 100.0
CLEANUP_TIMEOUT = 20.0
WORKFLOW_LABEL = "treadle.workflow"
# A container start costs far more than a local step, and these machines are shared: give each workflow
# more time than the local conformance suite does (this only relaxes that suite's limit, in this session).
conformance_harness.WORKFLOW_TIMEOUT = max(conformance_harness.WORKFLOW_TIMEOUT, 90.0)


def for_docker(case: Case) -> Case:
    """The case without its wall-clock bounds: those check the engine's timing, which the local suite covers."""
    expect = {key: value for key, value in case.expect.items() if key not in ("duration", "concurrency")}
    return replace(case, expect=expect)


@dataclass
class DockerSuite:
    server: Server
    docker_host: str
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(CONCURRENCY, "docker-case"))
    _futures: dict[str, Future[Outcome]] = field(default_factory=dict)
    _local: threading.local = field(default_factory=threading.local)
    _opened: list[Server] = field(default_factory=list)

    def start(self, cases: list[Case]) -> None:
        for case in cases:
            self._futures[case.name] = self._pool.submit(self._run, case)

    def outcome(self, case: Case) -> Outcome:
        future = self._futures.get(case.name)
        if future is None:
            future = self._futures[case.name] = self._pool.submit(self._run, case)
        return future.result(timeout=CASE_TIMEOUT)

    def run_now(self, case: Case) -> Outcome:
        return self._run(case)

    def submit(self, manifest: str) -> str:
        """Submit without waiting; the workflow's name."""
        with SyncTreadleClient(self.server.address) as client:
            return str(client.submit(manifest).metadata.name)

    def wait_for_all(self) -> None:
        """Every case started so far has ended (whatever its outcome)."""
        for future in list(self._futures.values()):
            future.exception(timeout=CASE_TIMEOUT)

    def _run(self, case: Case) -> Outcome:
        return run_case(self._thread_server(), case)

    def _thread_server(self) -> Server:
        """This worker thread's own client (a SyncTreadleClient runs its own event loop) and channel."""
        own: Server | None = getattr(self._local, "server", None)
        if own is None:
            address = self.server.address
            channel = grpc.insecure_channel(address)
            client = SyncTreadleClient(address)
            own = replace(self.server, client=client, channel=channel, admission=adm_grpc.AdmissionServiceStub(channel))
            self._local.server = own
            self._opened.append(own)
        return own

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for own in self._opened:
            own.client.close()
            own.channel.close()

    # -- the engine's side --------------------------------------------------------------

    def engine(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.docker_host, version="1.41", timeout=30)

    @staticmethod
    def engine_api(docker_host: str) -> docker.APIClient:
        return docker.APIClient(base_url=docker_host, version="1.41", timeout=30)

    def leftovers(self, workflow: str) -> list[str]:
        """Containers, networks and volumes still labelled with this workflow."""
        label = {"label": f"{WORKFLOW_LABEL}={workflow}"}
        api = self.engine().api
        try:
            found = [f"container {c['Names'][0]}" for c in api.containers(all=True, filters=label)]
            found += [f"network {n['Name']}" for n in api.networks(filters=label)]
            found += [f"volume {v['Name']}" for v in api.volumes(filters=label).get("Volumes") or []]
            return found
        finally:
            api.close()

    def assert_nothing_left(self, workflow: str) -> None:
        """Cleanup runs in the background once a workflow is over: give it a moment, then nothing may remain."""
        deadline = time.monotonic() + CLEANUP_TIMEOUT
        while left := self.leftovers(workflow):
            if time.monotonic() > deadline:
                raise AssertionError(f"workflow {workflow} left {', '.join(left)} behind")
            time.sleep(0.2)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
