"""TreadleClient's lifecycle, WorkflowTemplate and semaphore calls, its bearer token and TLS, over real gRPC.

Fake services record each request, its deadline and its metadata, so the
request shapes, request ids, retries, error mapping and channel security are
checked without the rest of treadle.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from treadle import errors
from treadle.admission.v1 import admission_pb2 as adm
from treadle.admission.v1 import admission_pb2_grpc as adm_grpc
from treadle.client import ChannelSecurity, Lock, SyncTreadleClient, TreadleClient
from treadle.client.connection import certificate_name, split_address
from treadle.grpcutil.server import ServiceBinding, create_server
from treadle.grpcutil.status import grpc_errors
from treadle.scheduler.v1 import scheduler_pb2 as sch
from treadle.scheduler.v1 import scheduler_pb2_grpc as sch_grpc
from treadle.templates.v1 import templates_pb2 as tpl
from treadle.templates.v1 import templates_pb2_grpc as tpl_grpc
from treadle.workflow.v1 import workflow_pb2 as wf_pb

Context = grpc.aio.ServicerContext[Any, Any]
TEMPLATE = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: NAME}
spec:
  templates: [{name: say, container: {image: busybox, command: [echo, hi]}}]
"""


class Recorder:
    """What every fake call saw: the request, its deadline and its authorization metadata."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.deadlines: list[float | None] = []
        self.authorization: list[str] = []

    def note(self, request: Any, context: Context) -> None:
        self.requests.append(request)
        self.deadlines.append(context.time_remaining())
        metadata = dict(context.invocation_metadata() or ())
        self.authorization.append(str(metadata.get("authorization", "")))


class FakeAdmission(adm_grpc.AdmissionServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.seen = recorder
        self.unavailable_answers = 0  # how many lifecycle calls to answer Unavailable first

    def _answer(self, request: Any, context: Context, phase: wf_pb.WorkflowPhase.ValueType) -> wf_pb.Workflow:
        self.seen.note(request, context)
        if request.name == "ghost":
            raise errors.NotFound("workflow", "ghost")
        if request.name == "done":
            raise errors.FailedPrecondition("cannot suspend workflow 'done': it has already succeeded")
        if self.unavailable_answers:
            self.unavailable_answers -= 1
            raise errors.Unavailable("workflow is not with the scheduler yet; try again shortly")
        workflow = wf_pb.Workflow()
        workflow.metadata.name = request.name
        workflow.status.phase = phase
        return workflow

    @grpc_errors
    async def SuspendWorkflow(self, request: adm.SuspendWorkflowRequest, context: Context) -> Any:
        return adm.SuspendWorkflowResponse(workflow=self._answer(request, context, wf_pb.WORKFLOW_PHASE_RUNNING))

    @grpc_errors
    async def ResumeWorkflow(self, request: adm.ResumeWorkflowRequest, context: Context) -> Any:
        return adm.ResumeWorkflowResponse(workflow=self._answer(request, context, wf_pb.WORKFLOW_PHASE_RUNNING))

    @grpc_errors
    async def StopWorkflow(self, request: adm.StopWorkflowRequest, context: Context) -> Any:
        return adm.StopWorkflowResponse(workflow=self._answer(request, context, wf_pb.WORKFLOW_PHASE_FAILED))

    @grpc_errors
    async def TerminateWorkflow(self, request: adm.TerminateWorkflowRequest, context: Context) -> Any:
        return adm.TerminateWorkflowResponse(workflow=self._answer(request, context, wf_pb.WORKFLOW_PHASE_FAILED))

    @grpc_errors
    async def SetWorkflowNode(self, request: adm.SetWorkflowNodeRequest, context: Context) -> Any:
        return adm.SetWorkflowNodeResponse(workflow=self._answer(request, context, wf_pb.WORKFLOW_PHASE_RUNNING))

    @grpc_errors
    async def RetryWorkflow(self, request: adm.RetryWorkflowRequest, context: Context) -> Any:
        return adm.RetryWorkflowResponse(workflow=self._answer(request, context, wf_pb.WORKFLOW_PHASE_RUNNING))

    @grpc_errors
    async def ResubmitWorkflow(self, request: adm.ResubmitWorkflowRequest, context: Context) -> Any:
        workflow = self._answer(request, context, wf_pb.WORKFLOW_PHASE_PENDING)
        workflow.metadata.name = f"{request.name}-abcde"
        return adm.ResubmitWorkflowResponse(workflow=workflow)

    @grpc_errors
    async def GetWorkflow(self, request: adm.GetWorkflowRequest, context: Context) -> Any:
        return adm.GetWorkflowResponse(workflow=self._answer(request, context, wf_pb.WORKFLOW_PHASE_RUNNING))

    @grpc_errors
    async def WatchWorkflow(self, request: adm.WatchWorkflowRequest, context: Context) -> AsyncIterator[Any]:
        yield adm.WatchWorkflowResponse(workflow=self._answer(request, context, wf_pb.WORKFLOW_PHASE_SUCCEEDED))


class FakeTemplates(tpl_grpc.WorkflowTemplateServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.seen = recorder
        self.templates: dict[str, tpl.WorkflowTemplate] = {}

    def _parse(self, request: Any) -> tpl.WorkflowTemplate:
        if request.WhichOneof("source") == "template":
            return tpl.WorkflowTemplate(metadata=request.template.metadata, spec=request.template.spec)
        import yaml

        doc = yaml.safe_load(request.manifest)
        if doc.get("kind") != "WorkflowTemplate":
            raise errors.InvalidSpec("expected kind WorkflowTemplate", field="kind")
        template = tpl.WorkflowTemplate()
        template.metadata.name = doc["metadata"]["name"]
        template.spec.templates.add(name="say")
        return template

    @grpc_errors
    async def CreateWorkflowTemplate(self, request: tpl.CreateWorkflowTemplateRequest, context: Context) -> Any:
        self.seen.note(request, context)
        template = self._parse(request)
        if template.metadata.name in self.templates:
            raise errors.AlreadyExists("WorkflowTemplate", template.metadata.name)
        template.metadata.resource_version = "1"
        self.templates[template.metadata.name] = template
        return tpl.CreateWorkflowTemplateResponse(template=template)

    @grpc_errors
    async def GetWorkflowTemplate(self, request: tpl.GetWorkflowTemplateRequest, context: Context) -> Any:
        self.seen.note(request, context)
        return tpl.GetWorkflowTemplateResponse(template=self._find(request.name))

    @grpc_errors
    async def ListWorkflowTemplates(self, request: tpl.ListWorkflowTemplatesRequest, context: Context) -> Any:
        self.seen.note(request, context)
        names = sorted(self.templates)
        start = int(request.page_token or 0)
        end = start + (request.page_size or 100)
        return tpl.ListWorkflowTemplatesResponse(
            templates=[self.templates[n] for n in names[start:end]],
            next_page_token=str(end) if end < len(names) else "",
        )

    @grpc_errors
    async def UpdateWorkflowTemplate(self, request: tpl.UpdateWorkflowTemplateRequest, context: Context) -> Any:
        self.seen.note(request, context)
        template = self._parse(request)
        stored = self._find(template.metadata.name)
        if request.resource_version and request.resource_version != stored.metadata.resource_version:
            raise errors.FailedPrecondition("resource_version is not current", subject=template.metadata.name)
        template.metadata.resource_version = str(int(stored.metadata.resource_version) + 1)
        self.templates[template.metadata.name] = template
        return tpl.UpdateWorkflowTemplateResponse(template=template)

    @grpc_errors
    async def DeleteWorkflowTemplate(self, request: tpl.DeleteWorkflowTemplateRequest, context: Context) -> Any:
        self.seen.note(request, context)
        self._find(request.name)
        del self.templates[request.name]
        return tpl.DeleteWorkflowTemplateResponse()

    @grpc_errors
    async def LintWorkflowTemplate(self, request: tpl.LintWorkflowTemplateRequest, context: Context) -> Any:
        self.seen.note(request, context)
        return tpl.LintWorkflowTemplateResponse(template=self._parse(request))

    def _find(self, name: str) -> tpl.WorkflowTemplate:
        if name not in self.templates:
            raise errors.NotFound("WorkflowTemplate", name)
        return self.templates[name]


class FakeScheduler(sch_grpc.SchedulerServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.seen = recorder
        self.limits: dict[str, int] = {}

    @grpc_errors
    async def SetSemaphore(self, request: sch.SetSemaphoreRequest, context: Context) -> Any:
        self.seen.note(request, context)
        self.limits[request.name] = request.limit
        return sch.SetSemaphoreResponse()

    @grpc_errors
    async def DeleteSemaphore(self, request: sch.DeleteSemaphoreRequest, context: Context) -> Any:
        self.seen.note(request, context)
        if self.limits.pop(request.name, None) is None:
            raise errors.NotFound("semaphore", request.name)
        return sch.DeleteSemaphoreResponse()

    @grpc_errors
    async def ListLocks(self, request: sch.ListLocksRequest, context: Context) -> Any:
        self.seen.note(request, context)
        locks = [sch.Lock(name=f"semaphore/{name}", limit=limit) for name, limit in sorted(self.limits.items())]
        locks.append(sch.Lock(name="mutex/db", limit=1, holders=["wf-1/node-2"]))
        return sch.ListLocksResponse(locks=locks)


def bindings(recorder: Recorder, *, scheduler: bool = True) -> list[ServiceBinding]:
    hosted = [
        ServiceBinding(
            "treadle.admission.v1.AdmissionService",
            FakeAdmission(recorder),
            adm_grpc.add_AdmissionServiceServicer_to_server,
        ),
        ServiceBinding(
            "treadle.templates.v1.WorkflowTemplateService",
            FakeTemplates(recorder),
            tpl_grpc.add_WorkflowTemplateServiceServicer_to_server,
        ),
    ]
    if scheduler:
        hosted.append(
            ServiceBinding(
                "treadle.scheduler.v1.SchedulerService",
                FakeScheduler(recorder),
                sch_grpc.add_SchedulerServiceServicer_to_server,
            )
        )
    return hosted


def with_server(test: Callable[[TreadleClient, Recorder, FakeAdmission], Awaitable[None]], *, token: str = "") -> None:
    async def main() -> None:
        recorder = Recorder()
        hosted = bindings(recorder)
        server = await create_server(hosted)
        try:
            security = ChannelSecurity(token=token)
            async with TreadleClient(server.address, timeout=5.0, security=security) as client:
                await test(client, recorder, hosted[0].servicer)
        finally:
            await server.drain(0)

    asyncio.run(main())


# -- lifecycle ---------------------------------------------------------------------------


def test_lifecycle_calls_send_their_fields_a_request_id_and_a_deadline() -> None:
    async def check(client: TreadleClient, seen: Recorder, fake: FakeAdmission) -> None:
        assert (await client.suspend("wf")).metadata.name == "wf"
        await client.resume("wf", node="approve", request_id="mine")
        assert (await client.stop("wf", message="enough")).status.phase == wf_pb.WORKFLOW_PHASE_FAILED
        await client.terminate("wf", message="now")
        await client.set_node("wf", "approve", parameters={"answer": "yes"}, phase="succeeded", message="ok")
        await client.retry("wf")
        assert (await client.resubmit("wf", parameters={"a": "1"})).metadata.name == "wf-abcde"
        suspend, resume, stop, terminate, set_node, retry, resubmit = seen.requests
        assert isinstance(suspend, adm.SuspendWorkflowRequest) and len(suspend.request_id) == 36
        assert (resume.node, resume.request_id) == ("approve", "mine")
        assert (stop.message, terminate.message) == ("enough", "now")
        assert dict(set_node.output_parameters) == {"answer": "yes"}
        assert (set_node.node, set_node.phase, set_node.message) == ("approve", wf_pb.NODE_PHASE_SUCCEEDED, "ok")
        assert isinstance(retry, adm.RetryWorkflowRequest) and dict(resubmit.parameters) == {"a": "1"}
        assert len({r.request_id for r in seen.requests}) == 7
        assert all(d is not None and 0 < d <= 5.5 for d in seen.deadlines)

    with_server(check)


def test_set_node_takes_the_phase_as_a_word_or_the_enum_and_refuses_others() -> None:
    async def check(client: TreadleClient, seen: Recorder, fake: FakeAdmission) -> None:
        await client.set_node("wf", "n", phase=wf_pb.NODE_PHASE_FAILED)
        await client.set_node("wf", "n", parameters={"p": "v"})
        assert [r.phase for r in seen.requests] == [wf_pb.NODE_PHASE_FAILED, wf_pb.NODE_PHASE_UNSPECIFIED]
        for bad in ("Running", "Skipped", "sideways"):
            with pytest.raises(errors.InvalidSpec, match="cannot be set"):
                await client.set_node("wf", "n", phase=bad)
        assert len(seen.requests) == 2

    with_server(check)


def test_lifecycle_calls_retry_unavailable_with_the_same_request_id() -> None:
    async def check(client: TreadleClient, seen: Recorder, fake: FakeAdmission) -> None:
        fake.unavailable_answers = 2
        await client.suspend("wf")
        assert len(seen.requests) == 3
        assert len({r.request_id for r in seen.requests}) == 1

    with_server(check)


def test_lifecycle_errors_are_typed() -> None:
    async def check(client: TreadleClient, seen: Recorder, fake: FakeAdmission) -> None:
        with pytest.raises(errors.NotFound, match="'ghost'"):
            await client.suspend("ghost")
        with pytest.raises(errors.FailedPrecondition, match="already succeeded"):
            await client.resume("done")

    with_server(check)


# -- WorkflowTemplates -------------------------------------------------------------------


def test_template_calls() -> None:
    async def check(client: TreadleClient, seen: Recorder, fake: FakeAdmission) -> None:
        for name in ("b", "a", "c"):
            created = await client.create_template(TEMPLATE.replace("NAME", name))
            assert created.metadata.name == name
        with pytest.raises(errors.AlreadyExists, match="WorkflowTemplate 'a' already exists"):
            await client.create_template(TEMPLATE.replace("NAME", "a"))
        assert (await client.get_template("a")).metadata.resource_version == "1"
        assert [t.metadata.name async for t in client.list_templates(page_size=2)] == ["a", "b", "c"]
        updated = await client.update_template(TEMPLATE.replace("NAME", "a"), resource_version="1")
        assert updated.metadata.resource_version == "2"
        with pytest.raises(errors.FailedPrecondition):
            await client.update_template(TEMPLATE.replace("NAME", "a"), resource_version="1")
        assert (await client.lint_template(TEMPLATE.replace("NAME", "z"))).metadata.name == "z"
        with pytest.raises(errors.InvalidSpec) as invalid:
            await client.lint_template(TEMPLATE.replace("WorkflowTemplate", "Workflow"))
        assert [v.field for v in invalid.value.violations] == ["kind"]
        await client.delete_template("b")
        with pytest.raises(errors.NotFound):
            await client.get_template("b")
        creates = [r for r in seen.requests if isinstance(r, tpl.CreateWorkflowTemplateRequest)]
        assert all(len(r.request_id) == 36 for r in creates)
        assert all(d is not None and 0 < d <= 5.5 for d in seen.deadlines)

    with_server(check)


def test_a_typed_template_travels_as_a_message() -> None:
    async def check(client: TreadleClient, seen: Recorder, fake: FakeAdmission) -> None:
        typed = tpl.WorkflowTemplate()
        typed.metadata.name = "typed"
        assert (await client.create_template(typed)).metadata.name == "typed"
        assert seen.requests[0].WhichOneof("source") == "template"

    with_server(check)


# -- semaphores --------------------------------------------------------------------------


def test_semaphore_calls() -> None:
    async def check(client: TreadleClient, seen: Recorder, fake: FakeAdmission) -> None:
        await client.set_semaphore("limits/looms", 2)
        locks = await client.list_locks()
        assert locks == [
            Lock(name="semaphore/limits/looms", limit=2, holders=()),
            Lock(name="mutex/db", limit=1, holders=("wf-1/node-2",)),
        ]
        assert [lock.kind for lock in locks] == ["semaphore", "mutex"]
        await client.delete_semaphore("limits/looms")
        with pytest.raises(errors.NotFound):
            await client.delete_semaphore("limits/looms")
        assert all(d is not None and 0 < d <= 5.5 for d in seen.deadlines)

    with_server(check)


def test_semaphores_reach_a_scheduler_that_runs_apart() -> None:
    async def main() -> None:
        front_seen, scheduler_seen = Recorder(), Recorder()
        front = await create_server(bindings(front_seen, scheduler=False))
        scheduler = await create_server(bindings(scheduler_seen)[2:])
        try:
            async with TreadleClient(front.address, timeout=5.0) as alone:
                with pytest.raises(errors.TreadleError, match="does not serve SchedulerService"):
                    await alone.list_locks()
            async with TreadleClient(front.address, timeout=5.0, scheduler_address=scheduler.address) as client:
                await client.set_semaphore("limits/looms", 3)
                await client.suspend("wf")
            assert [type(r).__name__ for r in scheduler_seen.requests] == ["SetSemaphoreRequest"]
            assert [type(r).__name__ for r in front_seen.requests] == ["SuspendWorkflowRequest"]
        finally:
            await front.drain(0)
            await scheduler.drain(0)

    asyncio.run(main())


# -- the bearer token --------------------------------------------------------------------


def test_the_token_travels_on_unary_and_streaming_calls_of_every_service() -> None:
    async def check(client: TreadleClient, seen: Recorder, fake: FakeAdmission) -> None:
        await client.get("wf")
        [wf async for wf in client.watch("wf")]
        await client.list_locks()
        await client.create_template(TEMPLATE.replace("NAME", "t"))
        assert seen.authorization == ["Bearer s3cret"] * 4

    with_server(check, token="s3cret")


def test_without_a_token_no_authorization_is_sent() -> None:
    async def check(client: TreadleClient, seen: Recorder, fake: FakeAdmission) -> None:
        await client.get("wf")
        assert seen.authorization == [""]

    with_server(check)


# -- TLS ---------------------------------------------------------------------------------


def self_signed_certificate(directory: Path, host: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate for host and 127.0.0.1, and its key, as PEM files."""
    import ipaddress

    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_tls_with_a_ca_file_and_with_insecure_skip_verify(tmp_path: Path) -> None:
    cert_path, key_path = self_signed_certificate(tmp_path)

    async def main() -> None:
        recorder = Recorder()
        server = grpc.aio.server()
        for binding in bindings(recorder):
            binding.add_to_server(binding.servicer, server)
        credentials = grpc.ssl_server_credentials([(key_path.read_bytes(), cert_path.read_bytes())])
        port = server.add_secure_port("127.0.0.1:0", credentials)
        await server.start()
        try:
            trusted = ChannelSecurity(ca_cert=str(cert_path), token="t")
            async with TreadleClient(f"localhost:{port}", timeout=5.0, security=trusted) as client:
                assert (await client.suspend("wf")).metadata.name == "wf"
            # An IP address the certificate also names, and a certificate nobody vouched for.
            unchecked = ChannelSecurity(insecure_skip_verify=True)
            async with TreadleClient(f"127.0.0.1:{port}", timeout=5.0, security=unchecked) as client:
                assert (await client.get("wf")).metadata.name == "wf"
            # With the system's roots the self-signed certificate is refused.
            async with TreadleClient(f"localhost:{port}", timeout=3.0, security=ChannelSecurity(tls=True)) as client:
                with pytest.raises(errors.Unavailable):
                    await client.get("wf")
            assert recorder.authorization[0] == "Bearer t"
        finally:
            await server.stop(0)

    asyncio.run(main())


def test_insecure_skip_verify_reports_an_unreachable_server_as_unavailable() -> None:
    async def main() -> None:
        async with TreadleClient("127.0.0.1:1", security=ChannelSecurity(insecure_skip_verify=True)) as client:
            with pytest.raises(errors.Unavailable, match="certificate"):
                await client.get("wf")

    asyncio.run(main())


def test_security_settings_are_checked() -> None:
    assert not ChannelSecurity().uses_tls and ChannelSecurity(ca_cert="x").uses_tls
    assert ChannelSecurity(insecure_skip_verify=True).uses_tls
    problems = ChannelSecurity(client_cert="/no/cert.pem").problems()
    assert problems == ["a client certificate needs both --client-cert and --client-key", "/no/cert.pem: no such file"]
    assert "contradict" in ChannelSecurity(insecure_skip_verify=True, ca_cert="/x").problems()[0]


@pytest.mark.parametrize(
    ("address", "parts"),
    [
        ("host:7733", ("host", 7733)),
        ("dns:///host:443", ("host", 443)),
        ("[::1]:9000", ("::1", 9000)),
        ("host", ("host", 443)),
    ],
)
def test_split_address(address: str, parts: tuple[str, int]) -> None:
    assert split_address(address) == parts


def test_certificate_name_prefers_the_dialled_host_then_dns_then_the_common_name() -> None:
    both = {"subjectAltName": (("DNS", "a.example"), ("IP Address", "10.0.0.1"))}
    assert certificate_name(both, "10.0.0.1") == "10.0.0.1"
    assert certificate_name(both, "tunnel") == "a.example"
    assert certificate_name({"subject": ((("commonName", "cn.example"),),)}, "x") == "cn.example"
    assert certificate_name({}, "x") == "x"


# -- the blocking facade -----------------------------------------------------------------


def test_sync_facade_has_the_control_calls() -> None:
    address: list[str] = []
    ready = threading.Event()
    stop = threading.Event()

    def serve() -> None:
        async def main() -> None:
            server = await create_server(bindings(Recorder()))
            address.append(server.address)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.02)
            await server.drain(0)

        asyncio.run(main())

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert ready.wait(10)
        with SyncTreadleClient(address[0]) as client:
            assert client.suspend("wf").metadata.name == "wf"
            assert client.resume("wf", node="n").metadata.name == "wf"
            assert client.stop("wf").status.phase == wf_pb.WORKFLOW_PHASE_FAILED
            assert client.terminate("wf").status.phase == wf_pb.WORKFLOW_PHASE_FAILED
            client.set_node("wf", "n", parameters={"a": "b"}, phase="Succeeded")
            client.retry("wf")
            assert client.resubmit("wf").metadata.name == "wf-abcde"
            client.create_template(TEMPLATE.replace("NAME", "t"))
            assert client.update_template(TEMPLATE.replace("NAME", "t")).metadata.resource_version == "2"
            assert client.lint_template(TEMPLATE.replace("NAME", "u")).metadata.name == "u"
            assert [t.metadata.name for t in client.list_templates()] == ["t"]
            assert client.get_template("t").metadata.name == "t"
            client.delete_template("t")
            client.set_semaphore("l/k", 1)
            assert client.list_locks()[0] == Lock("semaphore/l/k", 1, ())
            client.delete_semaphore("l/k")
    finally:
        stop.set()
        thread.join(10)
