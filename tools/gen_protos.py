"""Generate the Python gRPC stubs (and mypy .pyi stubs) from protos/.

    python tools/gen_protos.py           # write into the source tree
    python tools/gen_protos.py --check   # exit 1 when the committed stubs are stale

The proto package treadle.<area>.v1 becomes the Python package
treadle.<area>.v1, so generated imports resolve under the project's one root.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc into out_dir; return the generated files, relative to it."""
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    protos = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    mypy_plugin = shutil.which("protoc-gen-mypy", path=str(Path(sys.executable).parent))
    mypy_grpc_plugin = shutil.which("protoc-gen-mypy_grpc", path=str(Path(sys.executable).parent))
    if not mypy_plugin or not mypy_grpc_plugin:
        raise SystemExit("mypy-protobuf is not installed in this environment (pip install -e '.[dev]')")
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--plugin=protoc-gen-mypy={mypy_plugin}",
        f"--plugin=protoc-gen-mypy_grpc={mypy_grpc_plugin}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    generated = [p.relative_to(out_dir) for p in out_dir.rglob("*") if p.name.endswith(GENERATED_SUFFIXES)]
    for rel in generated:  # every generated folder must be a regular package
        for parent in rel.parents:
            if str(parent) != ".":
                init = out_dir / parent / "__init__.py"
                if not init.exists():
                    init.write_text("")
    return sorted(generated)


def committed_files() -> list[Path]:
    treadle = ROOT / "treadle"
    return sorted(p.relative_to(ROOT) for p in treadle.rglob("*") if p.name.endswith(GENERATED_SUFFIXES))


def _same(fresh: Path, committed: Path) -> bool:
    return committed.exists() and filecmp.cmp(fresh, committed, shallow=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when the committed stubs differ")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generated = generate(out)
        if opts.check:
            stale = [str(r) for r in generated if not _same(out / r, ROOT / r)]
            extra = [str(r) for r in committed_files() if r not in set(generated)]
            if stale or extra:
                print("generated stubs are stale; run: python tools/gen_protos.py", file=sys.stderr)
                for name in stale + extra:
                    print(f"  {name}", file=sys.stderr)
                return 1
            print(f"{len(generated)} generated files are up to date")
            return 0
        for rel in committed_files():
            if rel not in set(generated):
                (ROOT / rel).unlink()
        for path in out.rglob("*"):
            if path.is_file():
                dest = ROOT / path.relative_to(out)
                dest.parent.mkdir(parents=True, exist_ok=True)
                if not dest.exists() or path.name != "__init__.py":
                    shutil.copyfile(path, dest)
        print(f"wrote {len(generated)} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
