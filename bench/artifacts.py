"""Benchmark: push an artifact through ArtifactService into S3 and back out, against the minio client directly.

    .venv/bin/python bench/artifacts.py            # 1 GiB; records the figures in bench/README.md
    .venv/bin/python bench/artifacts.py --smoke    # 8 MiB, for CI; records nothing

One run, one S3 server (moto in server mode, in its own process, on loopback):

1. direct: the minio client uploads the file (``fput_object``, its defaults) and
   downloads it (``fget_object``);
2. through treadle: ArtifactService runs alone in its own process
   (``python -m treadle.services artifacts``) with the bucket as its repository;
   this process uploads the file with the executor's client (``upload_file``,
   digest announced) and downloads it (``download_to_file``), both checked by
   SHA-256.

Throughput ratio = direct time / service time (1.0 means as fast as direct),
for the round trip and each direction. Memory: the service process's peak
resident set (VmHWM) minus its resident set when idle after a warm-up
transfer, sampled from /proc/PID/status. Targets: ratio >= 0.5, growth <= 100 MB.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "service" / "artifacts"))  # the tests' S3 server launcher

from artifacts_s3 import moto_s3_server  # noqa: E402

MiB = 1024 * 1024
BUCKET = "treadle-bench"
ACCESS_KEY, SECRET_KEY = "bench-access", "bench-secret"
README = ROOT / "bench" / "README.md"
SECTION = "## Artifacts: 1 GiB through ArtifactService into S3"
TARGET_RATIO = 0.5
TARGET_GROWTH_MB = 100.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="move 8 MiB instead of 1 GiB; do not touch the README")
    parser.add_argument("--size-mib", type=int, default=1024, help="how much to move (default 1024)")
    parser.add_argument("--no-readme", action="store_true", help="do not record the figures in bench/README.md")
    args = parser.parse_args()
    size = (8 if args.smoke else args.size_mib) * MiB
    os.environ.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    with tempfile.TemporaryDirectory(prefix="treadle-bench-artifacts-") as tmp, moto_s3_server() as endpoint:
        results = run(Path(tmp), endpoint, size)
    print(json.dumps(results), flush=True)
    if not (args.smoke or args.no_readme):
        record(results)
    return 0 if results["meets_targets"] or args.smoke else 1  # 8 MiB is too little to judge the targets


def run(tmp: Path, endpoint: str, size: int) -> dict[str, Any]:
    from minio import Minio

    load_at_start = os.getloadavg()[0]
    client = Minio(endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region="us-east-1")
    client.make_bucket(BUCKET)
    source = tmp / "source.bin"
    sha256 = write_random_file(source, size)

    started = time.perf_counter()
    client.fput_object(BUCKET, "direct/object", str(source))
    direct_up = time.perf_counter() - started
    started = time.perf_counter()
    client.fget_object(BUCKET, "direct/object", str(tmp / "direct.bin"))
    direct_down = time.perf_counter() - started
    assert file_sha256(tmp / "direct.bin") == sha256
    (tmp / "direct.bin").unlink()
    client.remove_object(BUCKET, "direct/object")

    repository = f"s3://{BUCKET}/treadle?endpoint={endpoint}&insecure=1&region=us-east-1"
    with artifact_service(tmp, repository) as (address, pid):
        asyncio.run(transfer(address, tmp, tmp / "warm-up.bin", MiB))  # load code paths before the baseline
        idle = read_memory(pid)["VmRSS"]
        with sampling(pid) as peak:
            service_up, service_down = asyncio.run(transfer(address, tmp, source, size, sha256))
        growth = max(peak["VmHWM"], peak["VmRSS"]) - idle

    direct_total, service_total = direct_up + direct_down, service_up + service_down
    ratio = direct_total / service_total
    mb = size / 1e6
    return {
        "benchmark": "artifacts",
        "bytes": size,
        "direct_up_mb_s": round(mb / direct_up, 1),
        "direct_down_mb_s": round(mb / direct_down, 1),
        "service_up_mb_s": round(mb / service_up, 1),
        "service_down_mb_s": round(mb / service_down, 1),
        "ratio_round_trip": round(ratio, 3),
        "ratio_up": round(direct_up / service_up, 3),
        "ratio_down": round(direct_down / service_down, 3),
        "service_idle_rss_mb": round(idle / 1e6, 1),
        "service_peak_rss_growth_mb": round(growth / 1e6, 1),
        "meets_targets": ratio >= TARGET_RATIO and growth / 1e6 <= TARGET_GROWTH_MB,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_average_start_end": [round(load_at_start, 2), round(os.getloadavg()[0], 2)],
    }


async def transfer(address: str, tmp: Path, source: Path, size: int, sha256: str = "") -> tuple[float, float]:
    """Upload source through the service and download it again; the seconds each took."""
    from treadle.artifacts.v1 import artifacts_pb2, artifacts_pb2_grpc
    from treadle.grpcutil.channels import open_channel
    from treadle.services.artifacts.client import download_to_file, upload_file
    from treadle.services.artifacts.step_io import transfer_timeout

    if not source.exists():
        write_random_file(source, size)
    timeout = 10 * transfer_timeout(size)
    channel = open_channel(address)
    try:
        stub = artifacts_pb2_grpc.ArtifactServiceStub(channel)
        header = artifacts_pb2.UploadHeader(workflow="bench", pod_name="bench-pod", artifact_name=source.stem)
        started = time.perf_counter()
        info = await upload_file(stub, header, source, timeout=timeout)
        up = time.perf_counter() - started
        back = tmp / f"{source.stem}.back"
        started = time.perf_counter()
        await download_to_file(stub, info.key, back, timeout=timeout)
        down = time.perf_counter() - started
        assert info.size_bytes == size and (not sha256 or info.sha256 == sha256)
        back.unlink()
        await stub.DeleteArtifact(artifacts_pb2.DeleteArtifactRequest(key=info.key), timeout=timeout)
        return up, down
    finally:
        await channel.close()


@contextmanager
def artifact_service(tmp: Path, repository: str) -> Iterator[tuple[str, int]]:
    """ArtifactService alone in its own process; yields its address and pid, and stops it (by its pid) afterwards."""
    port_file = tmp / "port"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "treadle.services", "artifacts",
            "--listen", "127.0.0.1:0", "--port-file", str(port_file), "--data-dir", str(tmp / "data"),
            "--artifact-repository", repository, "--log-level", "WARNING",
        ],
        cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the artifact service did not start")
            time.sleep(0.05)
        yield f"127.0.0.1:{port_file.read_text().strip()}", process.pid
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def read_memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of pid, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


@contextmanager
def sampling(pid: int, interval: float = 0.02) -> Iterator[dict[str, int]]:
    """Sample pid's memory while the block runs; the dict holds the highest values seen."""
    peak = {"VmRSS": 0, "VmHWM": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for key, value in read_memory(pid).items():
                peak[key] = max(peak[key], value)
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
        for key, value in read_memory(pid).items():
            peak[key] = max(peak[key], value)


def write_random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for i in range(size // MiB):
            chunk = block[i % 256 :] + block[: i % 256]  # distinct blocks, cheaply
            digest.update(chunk)
            f.write(chunk)
        tail = os.urandom(size % MiB)
        digest.update(tail)
        f.write(tail)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown CPU",
    )
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return f"{platform.node()}: {os.cpu_count()} x {cpu}, {memory_kb / 1024**2:.0f} GiB, Linux {platform.release()}"


def record(results: dict[str, Any]) -> None:
    """Replace this benchmark's section of bench/README.md (other sections are left alone)."""
    section = f"""{SECTION}

`bench/artifacts.py` (see its docstring for the method). Latest run: {results["date"]} on {results["machine"]}.

| | direct minio client | through ArtifactService | ratio (target >= {TARGET_RATIO}) |
| --- | --- | --- | --- |
| upload | {results["direct_up_mb_s"]} MB/s | {results["service_up_mb_s"]} MB/s | {results["ratio_up"]} |
| download | {results["direct_down_mb_s"]} MB/s | {results["service_down_mb_s"]} MB/s | {results["ratio_down"]} |
| round trip | | | **{results["ratio_round_trip"]}** |

Service process memory: {results["service_idle_rss_mb"]} MB resident when idle; peak growth during the
transfer **{results["service_peak_rss_growth_mb"]} MB** (target <= {TARGET_GROWTH_MB:g} MB).
S3 is moto in server mode on loopback (no real MinIO or AWS here); the machine's 1-minute load average
was {results["load_average_start_end"][0]} at the start and {results["load_average_start_end"][1]} at the end
(it is shared: other suites ran meanwhile, so both columns are slower than on an idle machine).
The direct upload uses minio's defaults (5 MiB parts for 1 GiB, three in flight), the service 16 MiB
parts, two in flight: fewer requests for moto, which is why the service can upload faster than direct.

```json
{json.dumps(results)}
```
"""
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    README.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
