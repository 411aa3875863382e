"""Lint: everything that can be known wrong about a workflow before it runs.

validate_workflow returns the normalised workflow dict (arguments applied)
or raises InvalidSpec listing every violation, each naming its field.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from treadle.errors import FieldViolation, InvalidSpec
from treadle.spec import scope
from treadle.spec.convert import workflow_from_dict
from treadle.spec.graph import find_cycle
from treadle.spec.template import references, strings_with_paths

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
STEP_NAME_RE = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9_]*$")
MAX_NAME = 253


def validate_workflow(
    doc: dict[str, Any],
    *,
    parameters: dict[str, str] | None = None,
    entrypoint: str = "",
    generate_name: str = "",
) -> dict[str, Any]:
    """Check a parsed Workflow manifest; return it with overrides applied."""
    workflow_from_dict(doc)  # unsupported fields and wrong types, by path
    wf = copy.deepcopy({k: v for k, v in doc.items() if k != "status"})
    meta = wf.setdefault("metadata", {}) or {}
    wf["metadata"] = meta
    spec = wf.get("spec")
    if not isinstance(spec, dict):
        raise InvalidSpec(FieldViolation("spec", "spec is required"))
    if generate_name:
        meta["generateName"] = generate_name
    if entrypoint:
        spec["entrypoint"] = entrypoint
    _apply_parameters(spec, parameters or {})
    violations: list[FieldViolation] = []
    _check_metadata(meta, violations)
    Linter(spec, violations).run()
    if violations:
        raise InvalidSpec(violations)
    return wf


def _apply_parameters(spec: dict[str, Any], overrides: dict[str, str]) -> None:
    if not overrides:
        return
    args = spec.setdefault("arguments", {}) or {}
    spec["arguments"] = args
    params = args.setdefault("parameters", []) or []
    args["parameters"] = params
    by_name = {p.get("name"): p for p in params}
    for name, value in overrides.items():
        if name in by_name:
            by_name[name]["value"] = value
        else:
            params.append({"name": name, "value": value})


def _check_metadata(meta: dict[str, Any], out: list[FieldViolation]) -> None:
    name, gen = meta.get("name", ""), meta.get("generateName", "")
    if not name and not gen:
        out.append(FieldViolation("metadata.name", "metadata.name or metadata.generateName is required"))
    if name and (len(name) > MAX_NAME or not NAME_RE.match(name)):
        out.append(
            FieldViolation("metadata.name", f"{name!r} is not a valid name (lowercase letters, digits, '-', '.')")
        )
    if gen and not NAME_RE.match(gen.rstrip("-.") or "x"):
        out.append(FieldViolation("metadata.generateName", f"{gen!r} is not a valid name prefix"))


class Linter:
    def __init__(self, spec: dict[str, Any], out: list[FieldViolation]) -> None:
        self.spec = spec
        self.out = out
        self.templates: dict[str, dict[str, Any]] = {}
        self.globals = scope.global_names(spec)

    def fail(self, field: str, description: str) -> None:
        self.out.append(FieldViolation(field, description))

    def run(self) -> None:
        templates = self.spec.get("templates") or []
        if not templates:
            self.fail("spec.templates", "at least one template is required")
        for i, tmpl in enumerate(templates):
            name = tmpl.get("name", "")
            path = f"spec.templates[{i}]"
            if not name:
                self.fail(f"{path}.name", "template name is required")
            elif name in self.templates:
                self.fail(f"{path}.name", f"template name {name!r} is used twice")
            else:
                self.templates[name] = tmpl
        self._check_arguments()
        entry = self.spec.get("entrypoint", "")
        if not entry:
            self.fail("spec.entrypoint", "entrypoint is required")
        elif entry not in self.templates:
            self.fail("spec.entrypoint", f"entrypoint template {entry!r} not found")
        else:
            supplied = {p.get("name") for p in (self.spec.get("arguments") or {}).get("parameters") or []}
            arts = {a.get("name") for a in (self.spec.get("arguments") or {}).get("artifacts") or []}
            self._check_call_inputs("spec.arguments", self.templates[entry], supplied, arts)
        for i, tmpl in enumerate(templates):
            self._check_template(f"spec.templates[{i}]", tmpl)

    def _check_arguments(self) -> None:
        args = self.spec.get("arguments") or {}
        seen: set[str] = set()
        for i, p in enumerate(args.get("parameters") or []):
            name = p.get("name", "")
            path = f"spec.arguments.parameters[{i}]"
            if not name:
                self.fail(f"{path}.name", "parameter name is required")
            elif name in seen:
                self.fail(f"{path}.name", f"parameter {name!r} is given twice")
            seen.add(name)
            if p.get("value") is None and p.get("valueFrom") is None:
                self.fail(f"{path}.value", f"workflow parameter {name!r} needs a value (pass -p {name}=VALUE)")
        for i, a in enumerate(args.get("artifacts") or []):
            self._check_artifact_source(f"spec.arguments.artifacts[{i}]", a, self.globals)

    def _check_call_inputs(self, path: str, tmpl: dict[str, Any], params: set[Any], artifacts: set[Any]) -> None:
        inputs = tmpl.get("inputs") or {}
        for p in inputs.get("parameters") or []:
            if p.get("name") not in params and p.get("value") is None and p.get("default") is None:
                self.fail(
                    f"{path}.parameters",
                    f"required input parameter {p.get('name')!r} of template {tmpl.get('name')!r} is not supplied",
                )
        for a in inputs.get("artifacts") or []:
            has_source = a.get("raw") is not None or a.get("from")
            if a.get("name") not in artifacts and not has_source and not a.get("optional"):
                self.fail(
                    f"{path}.artifacts",
                    f"required input artifact {a.get('name')!r} of template {tmpl.get('name')!r} is not supplied",
                )

    def _check_template(self, path: str, tmpl: dict[str, Any]) -> None:
        kind = scope.template_kind(tmpl)
        if not kind:
            present = [k for k in ("container", "script", "steps", "dag") if tmpl.get(k) is not None]
            what = "none" if not present else " and ".join(present)
            self.fail(path, f"a template needs exactly one of container, script, steps or dag (has {what})")
            return
        allowed = self.globals | scope.input_names(tmpl)
        self._check_io_declarations(path, tmpl, kind)
        if kind in ("container", "script"):
            allowed |= {"pod.name", "node.name"}
            body = {k: v for k, v in tmpl.items() if k not in ("name", "outputs", "inputs")}
            self._check_refs(path, body, allowed)
            inputs = tmpl.get("inputs") or {}
            for i, a in enumerate(inputs.get("artifacts") or []):
                self._check_refs(f"{path}.inputs.artifacts[{i}]", {"path": a.get("path", "")}, allowed)
            outputs = tmpl.get("outputs") or {}
            self._check_refs(f"{path}.outputs", outputs, allowed)
        elif kind == "steps":
            self._check_steps(path, tmpl, allowed)
        else:
            self._check_dag(path, tmpl, allowed)

    def _check_io_declarations(self, path: str, tmpl: dict[str, Any], kind: str) -> None:
        leaf = kind in ("container", "script")
        for section in ("inputs", "outputs"):
            block = tmpl.get(section) or {}
            for group in ("parameters", "artifacts"):
                seen: set[str] = set()
                for i, item in enumerate(block.get(group) or []):
                    ipath = f"{path}.{section}.{group}[{i}]"
                    name = item.get("name", "")
                    if not name:
                        self.fail(f"{ipath}.name", "name is required")
                    elif name in seen:
                        self.fail(f"{ipath}.name", f"{name!r} is declared twice")
                    seen.add(name)
                    if group == "artifacts" and leaf and not item.get("path"):
                        self.fail(f"{ipath}.path", f"artifact {name!r} needs a path")
                    if section == "outputs" and group == "parameters":
                        vf = item.get("valueFrom") or {}
                        if leaf and not vf.get("path"):
                            self.fail(f"{ipath}.valueFrom.path", f"output parameter {name!r} needs valueFrom.path")
                        if not leaf and not vf.get("parameter") and item.get("value") is None:
                            self.fail(
                                f"{ipath}.valueFrom.parameter",
                                f"output parameter {name!r} of a {kind} template needs valueFrom.parameter",
                            )
                    if section == "outputs" and group == "artifacts" and not leaf and not item.get("from"):
                        self.fail(f"{ipath}.from", f"output artifact {name!r} of a {kind} template needs from")

    def _check_steps(self, path: str, tmpl: dict[str, Any], allowed: set[str]) -> None:
        done: set[str] = set()
        seen: set[str] = set()
        for g, group in enumerate(tmpl.get("steps") or []):
            group_names: set[str] = set()
            for s, step in enumerate(group or []):
                spath = f"{path}.steps[{g}][{s}]"
                name = step.get("name", "")
                if not name or not STEP_NAME_RE.match(name):
                    self.fail(f"{spath}.name", f"step name {name!r} is not valid")
                elif name in seen:
                    self.fail(f"{spath}.name", f"step name {name!r} is used twice")
                seen.add(name)
                group_names.add(name)
                self._check_call(spath, step, allowed | done)
            for name in group_names:
                done |= scope.sibling_names("steps", name, self._called(tmpl, name))
        all_steps = (
            set().union(*(scope.sibling_names("steps", n, self._called(tmpl, n)) for n in seen)) if seen else set()
        )
        self._check_refs(f"{path}.outputs", tmpl.get("outputs") or {}, allowed | all_steps)

    def _check_dag(self, path: str, tmpl: dict[str, Any], allowed: set[str]) -> None:
        tasks = (tmpl.get("dag") or {}).get("tasks") or []
        by_name: dict[str, dict[str, Any]] = {}
        for t, task in enumerate(tasks):
            name = task.get("name", "")
            if not name or not STEP_NAME_RE.match(name):
                self.fail(f"{path}.dag.tasks[{t}].name", f"task name {name!r} is not valid")
            elif name in by_name:
                self.fail(f"{path}.dag.tasks[{t}].name", f"task name {name!r} is used twice")
            by_name[name] = task
        graph: dict[str, list[str]] = {}
        for t, task in enumerate(tasks):
            deps = task.get("dependencies") or []
            for d, dep in enumerate(deps):
                if dep not in by_name:
                    self.fail(f"{path}.dag.tasks[{t}].dependencies[{d}]", f"task {dep!r} not found")
            graph[task.get("name", "")] = [d for d in deps if d in by_name]
        cycle = find_cycle(graph)
        if cycle:
            self.fail(f"{path}.dag.tasks", "dependency cycle: " + " -> ".join(cycle))
        for t, task in enumerate(tasks):
            ancestors = _ancestors(graph, task.get("name", ""))
            visible = set().union(*(scope.sibling_names("tasks", a, self._called_task(by_name[a])) for a in ancestors))
            self._check_call(f"{path}.dag.tasks[{t}]", task, allowed | visible)
        every = set().union(*(scope.sibling_names("tasks", n, self._called_task(task)) for n, task in by_name.items()))
        self._check_refs(f"{path}.outputs", tmpl.get("outputs") or {}, allowed | every)

    def _called(self, tmpl: dict[str, Any], step_name: str) -> dict[str, Any] | None:
        for group in tmpl.get("steps") or []:
            for step in group or []:
                if step.get("name") == step_name:
                    return self.templates.get(step.get("template", ""))
        return None

    def _called_task(self, task: dict[str, Any]) -> dict[str, Any] | None:
        return self.templates.get(task.get("template", ""))

    def _check_call(self, path: str, call: dict[str, Any], allowed: set[str]) -> None:
        target = call.get("template", "")
        if not target:
            self.fail(f"{path}.template", "template is required")
            return
        if target not in self.templates:
            self.fail(f"{path}.template", f"template {target!r} not found")
            return
        args = call.get("arguments") or {}
        params = {p.get("name") for p in args.get("parameters") or []}
        arts = {a.get("name") for a in args.get("artifacts") or []}
        self._check_call_inputs(f"{path}.arguments", self.templates[target], params, arts)
        for i, p in enumerate(args.get("parameters") or []):
            ppath = f"{path}.arguments.parameters[{i}]"
            if p.get("value") is None:
                self.fail(f"{ppath}.value", f"argument {p.get('name')!r} needs a value")
            self._check_refs(ppath, {"value": p.get("value", "")}, allowed)
        for i, a in enumerate(args.get("artifacts") or []):
            self._check_artifact_source(f"{path}.arguments.artifacts[{i}]", a, allowed)

    def _check_artifact_source(self, path: str, art: dict[str, Any], allowed: set[str]) -> None:
        source = art.get("from")
        if source:
            refs = references(source)
            if len(refs) != 1 or not source.strip().startswith("{{") or not source.strip().endswith("}}"):
                self.fail(f"{path}.from", f"from must be a single {{{{...}}}} reference, got {source!r}")
            elif refs[0] not in allowed or ".outputs.artifacts." not in refs[0] and not refs[0].startswith("inputs."):
                self.fail(f"{path}.from", f"undefined reference {{{{{refs[0]}}}}}")
        elif art.get("raw") is None and not art.get("optional"):
            self.fail(path, f"artifact {art.get('name')!r} needs from or raw")

    def _check_refs(self, path: str, tree: Any, allowed: set[str]) -> None:
        for where, text in strings_with_paths(tree, path):
            for ref in references(text):
                if ref.startswith("="):
                    self.fail(where, f"expression tags ({{{{{ref}}}}}) are not supported yet")
                elif ref not in allowed:
                    self.fail(where, f"undefined reference {{{{{ref}}}}}")


def _ancestors(graph: dict[str, list[str]], name: str) -> set[str]:
    seen: set[str] = set()
    stack = list(graph.get(name, []))
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(graph.get(n, []))
    return seen
