"""The pure core imports no transport, infrastructure or storage code.

The core is every module under treadle/spec/, treadle/expr/ and
services/scheduler/engine/ (installed as treadle.spec, treadle.expr and
treadle.services.scheduler.engine). This test reads their source with `ast`
and follows every import into treadle's own modules, so a core module that
imports a helper that imports grpc fails too.
Importing a module also runs its parent packages' __init__.py, so those are
followed as well. Every import statement counts, wherever it sits: at the top,
inside a function, or under `if TYPE_CHECKING:`.

Generated `*_pb2` modules are allowed (protobuf messages are data, not
transport) and are not followed; `*_pb2_grpc` modules are followed and fail,
because they import grpc.
"""

from __future__ import annotations

import ast
import textwrap
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# How setup.py maps import names onto folders (longest prefix wins).
PACKAGE_DIRS = {
    "treadle": REPO / "treadle",
    "treadle.services": REPO / "services",
    "treadle.executor": REPO / "executor",
    "treadle.client": REPO / "clients" / "python",
}
# The pure core (docs/architecture.md), plus the expression evaluator that
# DESIGN.md counts in it.
CORE_PACKAGES = ["treadle.spec", "treadle.expr", "treadle.services.scheduler.engine"]

# A dotted import name is forbidden when it equals one of these or lies below it.
FORBIDDEN = ("grpc", "kubernetes", "docker", "minio", "opentelemetry.exporter", "sqlite3")
FORBIDDEN_TOP_LEVEL_PREFIXES = ("grpc_",)  # grpc_status, grpc_health, grpc_reflection, grpc_tools


@dataclass(frozen=True)
class Violation:
    chain: tuple[str, ...]  # the core module first, then each treadle module it went through
    imported: str
    where: str  # file:line of the offending import

    def __str__(self) -> str:
        return f"{' -> '.join(self.chain)} imports {self.imported}  ({self.where})"


def is_forbidden(name: str) -> bool:
    top = name.split(".")[0]
    if top.startswith(FORBIDDEN_TOP_LEVEL_PREFIXES):
        return True
    return any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)


def is_generated_message_module(name: str) -> bool:
    return name.endswith("_pb2")


class ModuleMap:
    """Resolves dotted names under the project's root to source files."""

    def __init__(self, package_dirs: dict[str, Path]) -> None:
        self.package_dirs = dict(sorted(package_dirs.items(), key=lambda kv: -len(kv[0])))
        self.root = min(package_dirs, key=len)

    def owns(self, name: str) -> bool:
        return name == self.root or name.startswith(self.root + ".")

    def path_of(self, name: str) -> Path | None:
        """The module's file (a package's __init__.py), or None if there is none."""
        for prefix, folder in self.package_dirs.items():
            if name == prefix or name.startswith(prefix + "."):
                rest = name[len(prefix) :].lstrip(".")
                base = folder.joinpath(*rest.split(".")) if rest else folder
                if (base / "__init__.py").is_file():
                    return base / "__init__.py"
                if base.with_suffix(".py").is_file():
                    return base.with_suffix(".py")
                return None
        return None

    def is_package(self, name: str) -> bool:
        path = self.path_of(name)
        return path is not None and path.name == "__init__.py"

    def folder_of(self, package: str) -> Path | None:
        """The package's folder (with or without an __init__.py), or None."""
        for prefix, folder in self.package_dirs.items():
            if package == prefix or package.startswith(prefix + "."):
                rest = package[len(prefix) :].lstrip(".")
                base = folder.joinpath(*rest.split(".")) if rest else folder
                return base if base.is_dir() else None
        return None

    def modules_under(self, package: str) -> list[str]:
        """The package and every module below it."""
        folder = self.folder_of(package)
        if folder is None:
            return []
        names = [package]
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(folder).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            if parts:
                names.append(".".join((package, *parts)))
        return names


def imported_names(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, int, bool]]:
    """Every module name the source imports: (name, line, is_from_member), relative imports resolved.

    For `from X import y` both X and X.y are returned, the latter with
    is_from_member set: X.y may be a submodule (or just a name inside X).
    importlib.import_module("x") and __import__("x") with a literal name count too.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, False) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((base, node.lineno, False))
            found += [(f"{base}.{alias.name}", node.lineno, True) for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.args[0].value, node.lineno, False))
    return found


def parents_of(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def check_purity(core_packages: list[str], package_dirs: dict[str, Path]) -> tuple[list[Violation], set[str]]:
    """Walk the import graph from every core module; return the violations and the modules visited."""
    modules = ModuleMap(package_dirs)
    violations: list[Violation] = []
    # Breadth first, so each reported chain is a shortest one.
    chains: dict[str, tuple[str, ...]] = {}
    queue: deque[str] = deque()
    for package in core_packages:
        for name in modules.modules_under(package):
            if name not in chains:
                chains[name] = (name,)
                queue.append(name)
    while queue:
        name = queue.popleft()
        path = modules.path_of(name)
        if path is None:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = [(parent, 0, False) for parent in parents_of(name)]
        targets += imported_names(tree, name, modules.is_package(name))
        for target, line, is_from_member in targets:
            where = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{line}"
            if is_forbidden(target):
                if is_from_member:
                    continue  # `from grpc import aio`: reported once, as grpc
                violations.append(Violation(chains[name], target, where))
                continue
            follow = modules.owns(target) and not is_generated_message_module(target) and target not in chains
            # A name that is not a module (a class from `from X import y`) has no path: not followed.
            if follow and modules.path_of(target) is not None:
                chains[target] = (*chains[name], target)
                queue.append(target)
    return sorted(violations, key=str), set(chains)


# --- the real tree -------------------------------------------------------------


@pytest.mark.parametrize("package", CORE_PACKAGES)
def test_core_package_exists(package: str) -> None:
    assert ModuleMap(PACKAGE_DIRS).folder_of(package) is not None, f"core package {package} has no folder"


def test_pure_core_imports_no_transport_or_infrastructure() -> None:
    violations, visited = check_purity(CORE_PACKAGES, PACKAGE_DIRS)
    assert "treadle.spec" in visited
    assert not violations, (
        f"the pure core ({', '.join(CORE_PACKAGES)}) must not import "
        f"{', '.join(FORBIDDEN)} or grpc_*; found:\n  " + "\n  ".join(map(str, violations))
    )


# --- self-checks: the checker can fail ------------------------------------------


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def fake_project(tmp_path: Path) -> dict[str, Path]:
    """A miniature treadle with the same folder mapping as the real one."""
    write_tree(
        tmp_path,
        {
            "treadle/__init__.py": "",
            "treadle/spec/__init__.py": "from .model import Spec\n",
            "treadle/spec/model.py": "from treadle.workflow.v1 import workflow_pb2\nclass Spec: ...\n",
            "treadle/workflow/__init__.py": "",
            "treadle/workflow/v1/__init__.py": "",
            "treadle/workflow/v1/workflow_pb2.py": "from google.protobuf import descriptor\n",
            "treadle/workflow/v1/workflow_pb2_grpc.py": "import grpc\n",
            "treadle/helpers.py": "import json\n",
            "services/__init__.py": "",
            "services/scheduler/__init__.py": "",
            "services/scheduler/engine/__init__.py": "",
            "services/scheduler/engine/dag.py": "from treadle import helpers\n",
        },
    )
    return {
        "treadle": tmp_path / "treadle",
        "treadle.services": tmp_path / "services",
        "treadle.executor": tmp_path / "executor",
        "treadle.client": tmp_path / "clients" / "python",
    }


def test_checker_passes_a_clean_core(fake_project: dict[str, Path]) -> None:
    violations, visited = check_purity(CORE_PACKAGES, fake_project)
    assert violations == []
    assert {"treadle.spec.model", "treadle.helpers", "treadle.services.scheduler.engine.dag"} <= visited
    assert "treadle.workflow.v1.workflow_pb2" not in visited  # generated messages are allowed


@pytest.mark.parametrize(
    ("rel", "source", "imported"),
    [
        ("treadle/spec/model.py", "import grpc\n", "grpc"),
        ("treadle/spec/model.py", "from grpc import aio\n", "grpc"),
        ("treadle/spec/model.py", "def f():\n    import kubernetes.client\n", "kubernetes.client"),
        ("treadle/spec/model.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import docker\n", "docker"),
        ("treadle/spec/model.py", "from minio import Minio\n", "minio"),
        ("treadle/spec/model.py", "import opentelemetry.exporter.otlp\n", "opentelemetry.exporter.otlp"),
        ("treadle/spec/model.py", "import sqlite3\n", "sqlite3"),
        ("treadle/spec/model.py", "import grpc_status.rpc_status\n", "grpc_status.rpc_status"),
        ("treadle/spec/model.py", "import importlib\nimportlib.import_module('grpc')\n", "grpc"),
        ("services/scheduler/engine/dag.py", "import docker\n", "docker"),
    ],
)
def test_checker_flags_a_direct_import(
    fake_project: dict[str, Path], rel: str, source: str, imported: str, tmp_path: Path
) -> None:
    write_tree(tmp_path, {rel: source})
    violations, _ = check_purity(CORE_PACKAGES, fake_project)
    assert [v.imported for v in violations] == [imported], violations


def test_checker_follows_treadle_imports_transitively(fake_project: dict[str, Path], tmp_path: Path) -> None:
    write_tree(
        tmp_path, {"treadle/helpers.py": "from .transport import channel\n", "treadle/transport.py": "import grpc\n"}
    )
    violations, _ = check_purity(CORE_PACKAGES, fake_project)
    assert len(violations) == 1
    assert violations[0].chain == ("treadle.services.scheduler.engine.dag", "treadle.helpers", "treadle.transport")
    assert violations[0].imported == "grpc"
    assert violations[0].where.endswith("treadle/transport.py:1")


def test_checker_follows_parent_packages(fake_project: dict[str, Path], tmp_path: Path) -> None:
    # Importing the engine runs services/scheduler/__init__.py first.
    write_tree(tmp_path, {"services/scheduler/__init__.py": "import docker\n"})
    violations, _ = check_purity(CORE_PACKAGES, fake_project)
    assert {v.imported for v in violations} == {"docker"}
    assert all(v.chain[-1] == "treadle.services.scheduler" for v in violations)


def test_checker_flags_generated_grpc_stubs(fake_project: dict[str, Path], tmp_path: Path) -> None:
    write_tree(tmp_path, {"treadle/spec/model.py": "from treadle.workflow.v1 import workflow_pb2_grpc\n"})
    violations, _ = check_purity(CORE_PACKAGES, fake_project)
    assert [(v.chain[-1], v.imported) for v in violations] == [("treadle.workflow.v1.workflow_pb2_grpc", "grpc")]


def test_forbidden_names_match_whole_components() -> None:
    assert is_forbidden("grpc.aio")
    assert is_forbidden("opentelemetry.exporter.otlp.proto.grpc")
    assert not is_forbidden("grpcio_like_but_not")  # not grpc, not grpc_*
    assert not is_forbidden("dockerfile")
    assert not is_forbidden("opentelemetry.trace")
    assert not is_forbidden("sqlite3_helpers")
