"""Artifacts end to end: `treadle serve all` (a subprocess) with S3 repositories on a real S3 server (moto).

One server runs every workflow of this module at once (a module fixture), then
each test checks one promise of docs/artifacts.md against what the steps saw,
what the server reported, and what is in the buckets:

- output artifacts stored in S3 and consumed by the next step; directories with
  file modes and symlinks; ``subPath``; ``mode`` and ``recurseMode``; ``archive``
  none, tar and zip; key-only ``s3: {key: ...}`` outputs and inputs; ``raw``; a
  missing ``optional`` artifact;
- ``http`` inputs (headers, bearer token from a secret file) from a loopback
  server, and ``git`` inputs from a local bare repository (``file://``);
- ``artifactRepositoryRef`` to a named repository (another bucket), logs included;
- a 10 MB result and a 10 MB output parameter reaching the next step byte for
  byte, while SQLite rows and status events carry only references;
- a missing artifact failing its step with a message naming it and its source;
- artifactGC OnWorkflowCompletion and OnWorkflowDeletion removing that workflow's
  objects and nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import sqlite3
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from served import ServedTreadle

from treadle.client.client import TreadleClient
from treadle.errors import InvalidSpec
from treadle.workflow.v1 import workflow_pb2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service" / "artifacts"))

from artifacts_s3 import ACCESS_KEY, SECRET_KEY, S3Server, moto_s3_server
from artifacts_sources import HttpFiles, bare_git_repository, http_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEFAULT_BUCKET = "treadle-default"
NAMED_BUCKET = "treadle-named"
BEARER = "e2e-bearer-token-7d1"
WAIT_SECONDS = 45.0
BIG_LINES = 180_000  # about 10.3 MB of UTF-8 with two multi-byte characters a line

# The same text is built in the producing step (as Python source) and here.
BIG_TEXT_SOURCE = f"""def big(tag):
    return "\\n".join(f"{{tag}}-{{i:07d}} \\u00e9\\u20ac {{'abcdefghij' * 4}}" for i in range({BIG_LINES}))
"""


def big(tag: str) -> str:
    return "\n".join(f"{tag}-{i:07d} \u00e9\u20ac {'abcdefghij' * 4}" for i in range(BIG_LINES))


def indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line if line.strip() else line for line in text.splitlines(keepends=True))


# ------------------------------------------------------------------------------------------ manifests

PRODUCE = f"""
- name: produce
  outputs:
    parameters:
      - {{name: big, valueFrom: {{path: /tmp/out/big.txt}}}}
    artifacts:
      - {{name: tree, path: /tmp/out/tree}}
      - {{name: plain, path: /tmp/out/plain.txt, archive: {{none: {{}}}}}}
      - name: keyed
        path: /tmp/out/keyed.txt
        archive: {{none: {{}}}}
        s3: {{key: "shared/{{{{workflow.name}}}}/keyed.txt"}}
  script:
    image: python:3.12-alpine
    command: [python3]
    source: |
{indent(BIG_TEXT_SOURCE, 6)}
      import os, pathlib, sys
      out = pathlib.Path("/tmp/out")
      tree = out / "tree"
      (tree / "sub").mkdir(parents=True)
      (tree / "run.sh").write_text("#!/bin/sh\\necho ran\\n")
      os.chmod(tree / "run.sh", 0o755)
      (tree / "secret.txt").write_text("s3cret\\n")
      os.chmod(tree / "secret.txt", 0o600)
      (tree / "sub" / "inner.txt").write_text("inner\\n")
      os.chmod(tree / "sub" / "inner.txt", 0o644)
      os.symlink("run.sh", tree / "link")
      (out / "plain.txt").write_text("plain text\\n")
      (out / "keyed.txt").write_text("keyed\\n")
      (out / "big.txt").write_bytes(big("param").encode())
      sys.stdout.buffer.write(big("result").encode() + b"\\n")
"""

# Reports what it finds as JSON (its result): modes, links, contents.
REPORT = """
import json, os, stat, hashlib
def describe(path):
    st = os.lstat(path)
    info = {"mode": oct(stat.S_IMODE(st.st_mode))}
    if stat.S_ISLNK(st.st_mode):
        info["link"] = os.readlink(path)
    elif os.path.basename(path) == ".git":
        info["git"] = os.path.isfile(os.path.join(path, "HEAD"))
    elif stat.S_ISDIR(st.st_mode):
        info["entries"] = {name: describe(os.path.join(path, name)) for name in sorted(os.listdir(path))}
    else:
        data = open(path, "rb").read()
        small = len(data) < 100
        info["text" if small else "sha256"] = data.decode("utf-8", "replace") if small else hashlib.sha256(data).hexdigest()
    return info
print(json.dumps({name: describe("/tmp/in/" + name) if os.path.lexists("/tmp/in/" + name) else None
                  for name in sorted(NAMES)}))
"""


def consumer(name: str, inputs: str, names: list[str]) -> str:
    return f"""
- name: {name}
  inputs:
    artifacts:
{indent(inputs, 6)}
  script:
    image: python:3.12-alpine
    command: [python3]
    source: |
      NAMES = {names!r}
{indent(REPORT, 6)}
"""


FILES_INPUTS = """
- {name: tree, path: /tmp/in/tree}
- {name: tree755, path: /tmp/in/tree755, mode: 493, recurseMode: true}
- {name: inner, path: /tmp/in/inner}
- {name: plain, path: /tmp/in/plain, mode: 384}
"""


def sources_inputs(http_url: str, git_url: str) -> str:
    return f"""
- {{name: keyed, path: /tmp/in/keyed}}
- {{name: note, path: /tmp/in/note, raw: {{data: "raw for {{{{workflow.name}}}}"}}}}
- {{name: maybe, path: /tmp/in/maybe, optional: true, s3: {{key: nothing/here.txt}}}}
- name: web
  path: /tmp/in/web
  http:
    url: {http_url}/token/data.csv
    headers: [{{name: X-Treadle-Test, value: e2e}}]
    auth: {{bearerToken: {{tokenSecret: {{name: web-token, key: token}}}}}}
- {{name: webzip, path: /tmp/in/webzip, archive: {{zip: {{}}}}, http: {{url: "{http_url}/pub/bundle.zip"}}}}
- {{name: webtar, path: /tmp/in/webtar, archive: {{tar: {{}}}}, http: {{url: "{http_url}/pub/bundle.tgz"}}}}
- {{name: webnone, path: /tmp/in/webnone, archive: {{none: {{}}}}, http: {{url: "{http_url}/pub/bundle.tgz"}}}}
- {{name: repo, path: /tmp/in/repo, git: {{repo: "{git_url}", revision: v1, depth: 1}}}}
"""


BIG_CONSUMER = """
- name: consume-big
  inputs:
    parameters: [{name: res}, {name: big}]
  script:
    image: python:3.12-alpine
    command: [python3]
    source: |
      import hashlib, json
      res = \"\"\"{{inputs.parameters.res}}\"\"\"
      big = \"\"\"{{inputs.parameters.big}}\"\"\"
      print(json.dumps({name: [len(v.encode()), hashlib.sha256(v.encode()).hexdigest()]
                        for name, v in (("res", res), ("big", big))}))
"""


def main_workflow(http_url: str, git_url: str) -> str:
    return f"""
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{name: art-main}}
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - {{name: produce, template: produce}}
        - - name: files
            template: files
            arguments:
              artifacts:
                - {{name: tree, from: "{{{{steps.produce.outputs.artifacts.tree}}}}"}}
                - {{name: tree755, from: "{{{{steps.produce.outputs.artifacts.tree}}}}"}}
                - {{name: inner, from: "{{{{steps.produce.outputs.artifacts.tree}}}}", subPath: sub/inner.txt}}
                - {{name: plain, from: "{{{{steps.produce.outputs.artifacts.plain}}}}"}}
          - name: sources
            template: sources
            arguments:
              artifacts:
                - {{name: keyed, s3: {{key: "shared/{{{{workflow.name}}}}/keyed.txt"}}}}
          - name: consume-big
            template: consume-big
            arguments:
              parameters:
                - {{name: res, value: "{{{{steps.produce.outputs.result}}}}"}}
                - {{name: big, value: "{{{{steps.produce.outputs.parameters.big}}}}"}}
{indent(PRODUCE, 4)}
{indent(consumer("files", FILES_INPUTS, ["tree", "tree755", "inner", "plain"]), 4)}
{indent(consumer("sources", sources_inputs(http_url, git_url), ["keyed", "note", "maybe", "web", "webzip", "webtar", "webnone", "repo"]), 4)}
{indent(BIG_CONSUMER, 4)}
"""


NAMED = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: art-named}
spec:
  entrypoint: main
  artifactRepositoryRef: {configMap: artifact-repositories, key: named}
  templates:
    - name: main
      steps:
        - - {name: make, template: make}
        - - name: use
            template: use
            arguments:
              artifacts: [{name: data, from: "{{steps.make.outputs.artifacts.data}}"}]
              parameters: [{name: wide, value: "{{steps.make.outputs.result}}"}]
    - name: make
      outputs:
        artifacts: [{name: data, path: /tmp/data.txt}]
      script:
        image: python:3.12-alpine
        command: [python3]
        source: |
          open("/tmp/data.txt", "w").write("named data\\n")
          print("w" * 300000)
    - name: use
      inputs:
        artifacts: [{name: data, path: /tmp/in.txt}]
        parameters: [{name: wide}]
      script:
        image: busybox
        command: [sh]
        source: |
          cat /tmp/in.txt
          wc -c <<'EOF'
          {{inputs.parameters.wide}}
          EOF
"""

MISSING = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: art-missing}
spec:
  entrypoint: main
  templates:
    - name: main
      dag:
        tasks:
          - {name: web, template: web}
          - {name: key, template: key}
    - name: web
      inputs:
        artifacts: [{name: data, path: /tmp/data.csv, http: {url: "HTTP_URL/pub/missing.csv"}}]
      container: {image: busybox, command: [cat, /tmp/data.csv]}
    - name: key
      inputs:
        artifacts: [{name: model, path: /tmp/model, s3: {key: "models/absent.tgz"}}]
      container: {image: busybox, command: [ls, /tmp/model]}
"""


RESTART = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: art-restart}
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - {name: make, template: make}
        - - {name: pause, template: pause}
        - - name: use
            template: use
            arguments: {parameters: [{name: wide, value: "{{steps.make.outputs.result}}"}]}
    - name: make
      script: {image: python:3.12-alpine, command: [python3], source: 'print("w" * 300000)'}
    - name: pause
      container: {image: busybox, command: [sleep, "1"]}
    - name: use
      inputs: {parameters: [{name: wide}]}
      script:
        image: busybox
        command: [sh]
        source: |
          wc -c <<'EOF'
          {{inputs.parameters.wide}}
          EOF
"""


def gc_workflow(name: str, strategy: str, own: dict[str, str]) -> str:
    """One step with output artifacts a, b, c; own gives some of them their own GC strategy."""
    outputs = [
        {"name": n, "path": f"/tmp/{n}.txt", **({"artifactGC": {"strategy": own[n]}} if n in own else {})}
        for n in ("a", "b", "c")
    ]
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "make",
            "artifactGC": {"strategy": strategy},
            "templates": [
                {
                    "name": "make",
                    "outputs": {"artifacts": outputs},
                    "container": {
                        "image": "busybox",
                        "command": ["sh", "-c", "for n in a b c; do echo $n > /tmp/$n.txt; done"],
                    },
                }
            ],
        },
    }
    return yaml.safe_dump(doc)


# ------------------------------------------------------------------------------------------ the run


@dataclass
class Run:
    server: ServedTreadle
    s3: S3Server
    http: HttpFiles
    http_url: str
    data_dir: Path
    # The server's arguments: both repositories.
    server_args: list[str]
    final: dict[str, workflow_pb2.Workflow] = field(default_factory=dict)
    # Object keys per bucket right after every workflow finished (before any deletion).
    keys_after_run: dict[str, set[str]] = field(default_factory=dict)

    def keys(self, bucket: str, prefix: str = "") -> set[str]:
        objects = self.s3.client().list_objects(bucket, prefix=prefix, recursive=True)
        return {o.object_name for o in objects if o.object_name and not o.object_name.startswith(".treadle")}


def node(workflow: workflow_pb2.Workflow, display_name: str) -> workflow_pb2.NodeStatus:
    found = [n for n in workflow.status.nodes.values() if n.display_name == display_name]
    assert len(found) == 1, f"{display_name} in {[n.display_name for n in workflow.status.nodes.values()]}"
    return found[0]


def write_repositories(root: Path, s3: S3Server) -> tuple[str, Path]:
    """The default repository's URI (credentials from files) and the repositories file with one named repository."""
    creds = root / "s3-creds"  # outside the secrets directory, as docs/artifacts.md advises
    creds.mkdir()
    (creds / "accesskey").write_text(ACCESS_KEY + "\n")
    (creds / "secretkey").write_text(SECRET_KEY + "\n")
    secrets = root / "secrets"
    (secrets / "named-creds").mkdir(parents=True)
    (secrets / "named-creds" / "accesskey").write_text(ACCESS_KEY)
    (secrets / "named-creds" / "secretkey").write_text(SECRET_KEY)
    (secrets / "web-token").mkdir()
    (secrets / "web-token" / "token").write_text(BEARER + "\n")
    default = f"s3://{DEFAULT_BUCKET}?endpoint={s3.endpoint}&region=us-east-1&insecure=1&credentialsDir={creds}"
    doc = {
        "secretsDir": str(secrets),
        "repositories": {
            "named": {
                "s3": {
                    "endpoint": s3.endpoint,
                    "bucket": NAMED_BUCKET,
                    "region": "us-east-1",
                    "insecure": True,
                    "keyFormat": "runs/{{workflow.name}}/{{pod.name}}/{{artifact.name}}",
                    "accessKeySecret": {"name": "named-creds", "key": "accesskey"},
                    "secretKeySecret": {"name": "named-creds", "key": "secretkey"},
                }
            }
        },
    }
    path = root / "repositories.yaml"
    path.write_text(yaml.safe_dump(doc))
    return default, path


def http_content() -> HttpFiles:
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        for name, text, mode in (("a.txt", "zip a\n", 0o644), ("b/c.txt", "zip c\n", 0o755)):
            member = zipfile.ZipInfo(name)
            member.external_attr = (0o100000 | mode) << 16  # a regular file with its mode, as zip(1) records it
            zf.writestr(member, text)
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w:gz") as tf:
        for name, text in (("x.txt", b"tar x\n"), ("y.txt", b"tar y\n")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tf.addfile(info, io.BytesIO(text))
    files = {
        "/token/data.csv": b"id,value\n1,42\n",
        "/pub/bundle.zip": zipped.getvalue(),
        "/pub/bundle.tgz": tarred.getvalue(),
    }
    return HttpFiles(files=files, bearer=BEARER)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("artifacts-e2e")
    git_repo = bare_git_repository(root / "git")
    content = http_content()
    with moto_s3_server() as endpoint, http_server(content) as http_url:
        s3 = S3Server(endpoint)
        for bucket in (DEFAULT_BUCKET, NAMED_BUCKET):
            s3.client().make_bucket(bucket)
        default_uri, repositories = write_repositories(root, s3)
        data_dir = root / "data"
        data_dir.mkdir()
        args = ["--artifact-repository", default_uri, "--artifact-repositories", str(repositories)]
        server = ServedTreadle(data_dir, args=args)
        outcome = Run(server, s3, content, http_url, data_dir, args)
        try:
            asyncio.run(_run_all(outcome, http_url, git_repo.url))
            yield outcome
        finally:
            log = server.stop()
            assert SECRET_KEY not in log and BEARER not in log


async def _run_all(outcome: Run, http_url: str, git_url: str) -> None:
    manifests = {
        "art-main": main_workflow(http_url, git_url),
        "art-named": NAMED,
        "art-missing": MISSING.replace("HTTP_URL", http_url),
        "gcdel-done": gc_workflow("gcdel-done", "OnWorkflowCompletion", {"b": "Never"}),
        "gcdel": gc_workflow("gcdel", "OnWorkflowDeletion", {"c": "OnWorkflowCompletion"}),
    }
    async with TreadleClient(outcome.server.address) as client:
        for manifest in manifests.values():
            await client.submit(manifest)
        finals = await asyncio.gather(*(client.wait(name, timeout=WAIT_SECONDS) for name in manifests))
        outcome.final = {w.metadata.name: w for w in finals}
        # OnWorkflowCompletion runs in the background once a workflow is final: wait for it to be done.
        for _ in range(100):
            done = outcome.keys(DEFAULT_BUCKET, "gcdel-done/")
            if len(done) == 1 and not any(k.endswith("/c.tgz") for k in outcome.keys(DEFAULT_BUCKET, "gcdel/")):
                break
            await asyncio.sleep(0.1)
        outcome.keys_after_run = {b: outcome.keys(b) for b in (DEFAULT_BUCKET, NAMED_BUCKET)}


# ------------------------------------------------------------------------------------------ the tests


def problems(workflow: workflow_pb2.Workflow) -> list[tuple[str, str]]:
    """(node, message) of every node that did not succeed: what an assertion shows."""
    return [
        (n.display_name, n.message)
        for n in workflow.status.nodes.values()
        if n.phase not in (workflow_pb2.NODE_PHASE_SUCCEEDED, workflow_pb2.NODE_PHASE_SKIPPED)
    ]


def report(run: Run, step: str) -> dict[str, object]:
    workflow = run.final["art-main"]
    found = node(workflow, step)
    assert found.phase == workflow_pb2.NODE_PHASE_SUCCEEDED, found.message
    parsed: dict[str, object] = json.loads(found.outputs.result)
    return parsed


def test_output_artifacts_round_trip_through_s3_with_modes_links_subpath_and_mode(run: Run) -> None:
    assert run.final["art-main"].status.phase == workflow_pb2.WORKFLOW_PHASE_SUCCEEDED, problems(run.final["art-main"])
    seen = report(run, "files")
    tree = {
        "mode": "0o755",
        "entries": {
            "link": {"mode": "0o777", "link": "run.sh"},
            "run.sh": {"mode": "0o755", "text": "#!/bin/sh\necho ran\n"},
            "secret.txt": {"mode": "0o600", "text": "s3cret\n"},
            "sub": {"mode": "0o755", "entries": {"inner.txt": {"mode": "0o644", "text": "inner\n"}}},
        },
    }
    assert seen["tree"] == tree
    # mode with recurseMode: every file and directory below, links left alone.
    recursed = {
        "mode": "0o755",
        "entries": {
            "link": {"mode": "0o777", "link": "run.sh"},
            "run.sh": {"mode": "0o755", "text": "#!/bin/sh\necho ran\n"},
            "secret.txt": {"mode": "0o755", "text": "s3cret\n"},
            "sub": {"mode": "0o755", "entries": {"inner.txt": {"mode": "0o755", "text": "inner\n"}}},
        },
    }
    assert seen["tree755"] == recursed
    assert seen["inner"] == {"mode": "0o644", "text": "inner\n"}
    assert seen["plain"] == {"mode": "0o600", "text": "plain text\n"}
    # The objects are in the default repository's bucket, under the workflow's prefix.
    keys = run.keys_after_run[DEFAULT_BUCKET]
    produce = node(run.final["art-main"], "produce")
    stored = {a.name: a.stored for a in produce.outputs.artifacts}
    assert stored["tree"].key == f"art-main/{produce.pod_name}/tree.tgz"
    assert (stored["plain"].key, stored["plain"].archive) == (f"art-main/{produce.pod_name}/plain", "none")
    assert {stored["tree"].key, stored["plain"].key} <= keys


def test_key_only_raw_optional_http_git_and_archive_strategies(run: Run) -> None:
    seen = report(run, "sources")
    # The key-only output is stored at exactly its key; the key-only input reads it back.
    produce = node(run.final["art-main"], "produce")
    assert {a.name: a.stored.key for a in produce.outputs.artifacts}["keyed"] == "shared/art-main/keyed.txt"
    assert "shared/art-main/keyed.txt" in run.keys_after_run[DEFAULT_BUCKET]
    assert seen["keyed"] == {"mode": "0o644", "text": "keyed\n"}
    assert seen["note"] == {"mode": "0o644", "text": "raw for art-main"}
    assert seen["maybe"] is None  # optional and missing: skipped
    assert seen["web"] == {"mode": "0o644", "text": "id,value\n1,42\n"}
    webzip = seen["webzip"]
    assert isinstance(webzip, dict)
    assert webzip["entries"] == {
        "a.txt": {"mode": "0o644", "text": "zip a\n"},
        "b": {"mode": "0o755", "entries": {"c.txt": {"mode": "0o755", "text": "zip c\n"}}},
    }
    webtar = seen["webtar"]
    assert isinstance(webtar, dict)
    assert {name: entry["text"] for name, entry in webtar["entries"].items()} == {
        "x.txt": "tar x\n",
        "y.txt": "tar y\n",
    }
    tgz = run.http.files["/pub/bundle.tgz"]
    assert seen["webnone"] == {"mode": "0o644", "sha256": hashlib.sha256(tgz).hexdigest()}
    repo = seen["repo"]
    assert isinstance(repo, dict)
    entries = repo["entries"]
    assert entries["README"]["text"] == "v1\n" and ".git" in entries and "src" not in entries
    # The bearer token and the header went to the HTTP server (only from the service: the step has no secret).
    sent = [headers for path, headers in run.http.requests if path == "/token/data.csv"]
    assert sent and sent[-1].get("Authorization") == f"Bearer {BEARER}" and sent[-1].get("X-Treadle-Test") == "e2e"


def test_10mb_result_and_parameter_reach_the_next_step_byte_exact(run: Run) -> None:
    seen = report(run, "consume-big")
    for name, text in (("res", big("result")), ("big", big("param"))):
        data = text.encode()
        assert len(data) > 10_000_000
        assert seen[name] == [len(data), hashlib.sha256(data).hexdigest()], name
    # Status carries references, not the text...
    produce = node(run.final["art-main"], "produce")
    assert not produce.outputs.HasField("result") and produce.outputs.result_ref.size_bytes == len(
        big("result").encode()
    )
    big_parameter = {p.name: p for p in produce.outputs.parameters}["big"]
    assert not big_parameter.HasField("value") and big_parameter.value_ref.key.endswith("outputs.parameters.big.txt")
    assert {produce.outputs.result_ref.key, big_parameter.value_ref.key} <= run.keys_after_run[DEFAULT_BUCKET]
    # The next step's inputs are the same texts: they travel as the same references.
    consumed = {p.name: p for p in node(run.final["art-main"], "consume-big").inputs.parameters}
    assert consumed["res"].value_ref == produce.outputs.result_ref and not consumed["res"].HasField("value")
    assert consumed["big"].value_ref == big_parameter.value_ref and not consumed["big"].HasField("value")
    # ...and so does the scheduler's storage: no row holds the text.
    with sqlite3.connect(f"file:{run.data_dir / 'state.db'}?mode=ro", uri=True) as conn:
        longest = conn.execute("SELECT max(length(record)) FROM scheduler_nodes").fetchone()[0]
        reports = conn.execute("SELECT max(length(report)) FROM outputs_reports").fetchone()[0]
    assert longest < 200_000 and reports < 200_000


def test_artifact_repository_ref_uses_the_named_repository(run: Run) -> None:
    workflow = run.final["art-named"]
    assert workflow.status.phase == workflow_pb2.WORKFLOW_PHASE_SUCCEEDED, workflow.status.message
    make = node(workflow, "make")
    assert make.outputs.artifacts[0].stored.repository == "named"
    assert make.outputs.result_ref.repository == "named"  # the 300 kB result went there too
    named = {k for k in run.keys_after_run[NAMED_BUCKET] if k.startswith("runs/art-named/")}
    assert f"runs/art-named/{make.pod_name}/data.tgz" in named
    assert f"runs/art-named/{make.pod_name}/outputs.result.txt" in named
    assert any(k.endswith("main-logs.log") for k in named)
    assert not any(k.startswith("art-named/") for k in run.keys_after_run[DEFAULT_BUCKET])

    async def logs() -> list[str]:
        async with TreadleClient(run.server.address) as client:
            return [line.content async for line in client.logs("art-named", node="use")]

    assert asyncio.run(logs()) == ["named data", "300001"]


def test_missing_artifact_fails_its_step_naming_the_artifact_and_source(run: Run) -> None:
    workflow = run.final["art-missing"]
    assert workflow.status.phase == workflow_pb2.WORKFLOW_PHASE_ERROR  # the executor could not run them
    web = node(workflow, "web")
    assert web.phase == workflow_pb2.NODE_PHASE_ERROR
    assert f"input artifact 'data' from http {run.http_url}/pub/missing.csv: not found" in web.message
    key = node(workflow, "key")
    assert "input artifact 'model' from s3 key models/absent.tgz: not found" in key.message


def test_unknown_repository_and_gc_strategy_are_refused_at_submission(run: Run) -> None:
    async def submit(manifest: str) -> InvalidSpec:
        async with TreadleClient(run.server.address) as client:
            with pytest.raises(InvalidSpec) as caught:
                await client.submit(manifest)
            return caught.value

    refused = asyncio.run(submit(NAMED.replace("key: named", "key: nowhere").replace("art-named", "art-nowhere")))
    assert [v.field for v in refused.violations] == ["spec.artifactRepositoryRef.key"]
    refused = asyncio.run(submit(gc_workflow("gc-bad", "Sometimes", {})))
    assert [v.field for v in refused.violations] == ["spec.artifactGC.strategy"]


def test_artifact_gc_on_completion_and_on_deletion_removes_only_that_workflows_objects(run: Run) -> None:
    done = run.final["gcdel-done"]
    deleted = run.final["gcdel"]
    assert done.status.phase == deleted.status.phase == workflow_pb2.WORKFLOW_PHASE_SUCCEEDED
    done_pod, del_pod = node(done, "gcdel-done").pod_name, node(deleted, "gcdel").pod_name
    # OnWorkflowCompletion: everything under the prefix went (outputs and log) except b, whose strategy is Never.
    kept = {k for k in run.keys_after_run[DEFAULT_BUCKET] if k.startswith("gcdel-done/")}
    assert kept == {f"gcdel-done/{done_pod}/b.tgz"}
    # OnWorkflowDeletion: a, b and the log stay until deletion; c (its own OnWorkflowCompletion) went at once.
    before = {k for k in run.keys_after_run[DEFAULT_BUCKET] if k.startswith("gcdel/")}
    assert before == {f"gcdel/{del_pod}/{name}" for name in ("a.tgz", "b.tgz", "main-logs.log")}
    others = run.keys(DEFAULT_BUCKET) - before

    async def delete() -> None:
        async with TreadleClient(run.server.address) as client:
            await client.delete("gcdel")

    asyncio.run(delete())
    after = run.keys(DEFAULT_BUCKET)
    assert not any(k.startswith("gcdel/") for k in after)
    assert after == others  # nothing of another workflow (gcdel-done's b, art-main's objects) was touched


def test_a_restarted_scheduler_reads_large_values_back(run: Run, tmp_path: Path) -> None:
    """The scheduler stores a large value as its reference only; after a restart it reads the text again."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()

    async def until_pausing(address: str) -> None:
        async with TreadleClient(address) as client:
            await client.submit(RESTART)
            async with asyncio.timeout(WAIT_SECONDS):
                async for workflow in client.watch("art-restart"):
                    if any(n.display_name == "pause" for n in workflow.status.nodes.values()):
                        return

    async def final(address: str) -> workflow_pb2.Workflow:
        async with TreadleClient(address) as client:
            return await client.wait("art-restart", timeout=WAIT_SECONDS)

    first = ServedTreadle(data_dir, args=run.server_args)
    try:
        asyncio.run(until_pausing(first.address))
    finally:
        first.stop()
    second = ServedTreadle(data_dir, args=run.server_args)
    try:
        workflow = asyncio.run(final(second.address))
    finally:
        log = second.stop()
    assert workflow.status.phase == workflow_pb2.WORKFLOW_PHASE_SUCCEEDED, problems(workflow)
    assert node(workflow, "use").outputs.result.strip() == "300001"
    assert "read 1 large value(s) of workflow art-restart" in log
