"""Lint rules for calls: steps, dag tasks, their arguments, loops, conditions and hooks."""

from __future__ import annotations

import re
from typing import Any

from treadle.errors import FieldViolation, InvalidSpec
from treadle.spec import depends as dep
from treadle.spec import scope
from treadle.spec.graph import find_cycle
from treadle.spec.template import references

STEP_NAME_RE = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9_]*$")
LOOP_FIELDS = ("withItems", "withParam", "withSequence")
# Input artifact sources that ArtifactService fetches (besides from and raw).
OUTSIDE_SOURCES = ("s3", "http", "git")


def has_artifact_source(art: dict[str, Any]) -> bool:
    """Whether an input artifact says where its data comes from: from, raw, s3, http or git."""
    return bool(art.get("from")) or art.get("raw") is not None or any(art.get(kind) for kind in OUTSIDE_SOURCES)


def is_looped(call: dict[str, Any]) -> bool:
    return any(call.get(f) not in (None, "", []) for f in LOOP_FIELDS) or call.get("withItems") == []


class CallLinter:
    spec: dict[str, Any]
    out: list[FieldViolation]
    templates: dict[str, dict[str, Any]]
    globals: set[str]

    def fail(self, field: str, description: str) -> None:
        raise NotImplementedError

    def _check_refs(self, path: str, tree: Any, allowed: set[str], *, items: bool = False) -> None:
        raise NotImplementedError

    def _check_call_inputs(self, path: str, tmpl: dict[str, Any], params: set[Any], artifacts: set[Any]) -> None:
        raise NotImplementedError

    # -- steps ----------------------------------------------------------------

    def _check_steps(self, path: str, tmpl: dict[str, Any], allowed: set[str]) -> None:
        done: set[str] = set()
        seen: dict[str, dict[str, Any]] = {}
        for g, group in enumerate(tmpl.get("steps") or []):
            group_names: dict[str, dict[str, Any]] = {}
            for s, step in enumerate(group or []):
                spath = f"{path}.steps[{g}][{s}]"
                name = step.get("name", "")
                if not name or not STEP_NAME_RE.match(name):
                    self.fail(f"{spath}.name", f"step name {name!r} is not valid")
                elif name in seen:
                    self.fail(f"{spath}.name", f"step name {name!r} is used twice")
                seen[name] = step
                group_names[name] = step
                self._check_call(spath, step, allowed | done, allowed | done)
            for name, step in group_names.items():
                done |= self._offered("steps", name, step)
        every = set().union(*(self._offered("steps", n, s) for n, s in seen.items())) if seen else set()
        self._check_refs(f"{path}.outputs", tmpl.get("outputs") or {}, allowed | every)

    # -- dag ------------------------------------------------------------------

    def _check_dag(self, path: str, tmpl: dict[str, Any], allowed: set[str]) -> None:
        dag = tmpl.get("dag") or {}
        tasks = dag.get("tasks") or []
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
            tpath = f"{path}.dag.tasks[{t}]"
            deps: list[str] = []
            if task.get("depends") and task.get("dependencies"):
                self.fail(f"{tpath}.depends", "use depends or dependencies, not both")
            if task.get("depends"):
                try:
                    deps = dep.tasks_of(dep.parse(task["depends"], f"{tpath}.depends"))
                except InvalidSpec as exc:
                    self.out.extend(exc.violations)
                for d in deps:
                    if d not in by_name:
                        self.fail(f"{tpath}.depends", f"task {d!r} not found")
            else:
                deps = list(task.get("dependencies") or [])
                for position, name in enumerate(deps):
                    if name not in by_name:
                        self.fail(f"{tpath}.dependencies[{position}]", f"task {name!r} not found")
            graph[task.get("name", "")] = [d for d in deps if d in by_name]
        cycle = find_cycle(graph)
        if cycle:
            self.fail(f"{path}.dag.tasks", "dependency cycle: " + " -> ".join(cycle))
        for target in str(dag.get("target") or "").split():
            if target not in by_name:
                self.fail(f"{path}.dag.target", f"target task {target!r} not found")
        for t, task in enumerate(tasks):
            ancestors = _ancestors(graph, task.get("name", "")) if not cycle else set()
            visible = set().union(*(self._offered("tasks", a, by_name[a]) for a in ancestors)) if ancestors else set()
            self._check_call(f"{path}.dag.tasks[{t}]", task, allowed | visible, allowed | visible)
        every = set().union(*(self._offered("tasks", n, task) for n, task in by_name.items())) if by_name else set()
        self._check_refs(f"{path}.outputs", tmpl.get("outputs") or {}, allowed | every)

    # -- one call ---------------------------------------------------------------

    def _offered(self, prefix: str, name: str, call: dict[str, Any]) -> set[str]:
        return scope.sibling_names(prefix, name, self.templates.get(call.get("template", "")), looped=is_looped(call))

    def _check_call(self, path: str, call: dict[str, Any], allowed: set[str], hook_scope: set[str]) -> None:
        if call.get("templateRef"):
            ref = call["templateRef"]
            self.fail(
                f"{path}.templateRef",
                f"WorkflowTemplate {ref.get('name')!r} is resolved by the server: lint with --server to check it",
            )
            return
        target = call.get("template", "")
        if not target:
            self.fail(f"{path}.template", "template is required")
            return
        if target not in self.templates:
            self.fail(f"{path}.template", f"template {target!r} not found")
            return
        looped = is_looped(call)
        loops = [f for f in LOOP_FIELDS if call.get(f) not in (None, "")]
        if len(loops) > 1:
            self.fail(f"{path}.{loops[1]}", f"use only one of {', '.join(LOOP_FIELDS)}")
        seq = call.get("withSequence") or {}
        if seq and seq.get("count") not in (None, "") and seq.get("end") not in (None, ""):
            self.fail(f"{path}.withSequence", "withSequence takes count or end, not both")
        loop_fields = {f: call[f] for f in LOOP_FIELDS if call.get(f) not in (None, "")}
        self._check_refs(path, loop_fields, allowed)
        if call.get("when"):
            self._check_refs(f"{path}.when", call["when"], allowed, items=looped)
        args = call.get("arguments") or {}
        params = {p.get("name") for p in args.get("parameters") or []}
        arts = {a.get("name") for a in args.get("artifacts") or []}
        self._check_call_inputs(f"{path}.arguments", self.templates[target], params, arts)
        for i, p in enumerate(args.get("parameters") or []):
            ppath = f"{path}.arguments.parameters[{i}]"
            if p.get("value") is None:
                self.fail(f"{ppath}.value", f"argument {p.get('name')!r} needs a value")
            self._check_refs(f"{ppath}.value", p.get("value", ""), allowed, items=looped)
        for i, a in enumerate(args.get("artifacts") or []):
            self._check_artifact_source(f"{path}.arguments.artifacts[{i}]", a, allowed, items=looped)
        if call.get("onExit") and call["onExit"] not in self.templates:
            self.fail(f"{path}.onExit", f"template {call['onExit']!r} not found")
        status = {f"{p}.{call.get('name')}.{f}" for p in ("steps", "tasks") for f in ("status", "exitCode")}
        self._check_hooks(f"{path}.hooks", call.get("hooks") or {}, hook_scope | status)

    def _check_hooks(self, path: str, hooks: dict[str, Any], allowed: set[str]) -> None:
        for name, hook in hooks.items():
            hpath = f"{path}.{name}"
            if name == "exit" and hook.get("expression"):
                self.fail(f"{hpath}.expression", "the exit hook runs at exit; it takes no expression")
            elif name != "exit" and not hook.get("expression"):
                self.fail(f"{hpath}.expression", f"hook {name!r} needs an expression that says when it runs")
            if hook.get("templateRef"):
                self.fail(f"{hpath}.templateRef", "WorkflowTemplates are resolved by the server: lint with --server")
            elif hook.get("template") not in self.templates:
                self.fail(f"{hpath}.template", f"template {hook.get('template')!r} not found")
            for i, p in enumerate((hook.get("arguments") or {}).get("parameters") or []):
                self._check_refs(f"{hpath}.arguments.parameters[{i}].value", p.get("value", ""), allowed)

    def _check_artifact_source(self, path: str, art: dict[str, Any], allowed: set[str], *, items: bool = False) -> None:
        source = art.get("from")
        if source:
            refs = references(source)
            if len(refs) != 1 or not source.strip().startswith("{{") or not source.strip().endswith("}}"):
                self.fail(f"{path}.from", f"from must be a single {{{{...}}}} reference, got {source!r}")
                return
            ref = refs[0]
            as_artifact = ".outputs.artifacts." in ref or ref.startswith("inputs.artifacts.")
            if not as_artifact or (ref not in allowed and not ref.startswith("inputs.artifacts.")):
                self.fail(f"{path}.from", f"undefined reference {{{{{ref}}}}}")
        elif not has_artifact_source(art) and not art.get("optional"):
            self.fail(path, f"artifact {art.get('name')!r} needs from, raw, s3, http or git")
        outside = {k: art[k] for k in (*OUTSIDE_SOURCES, "subPath") if art.get(k)}
        if outside:
            self._check_refs(path, outside, allowed, items=items)


def _ancestors(graph: dict[str, list[str]], name: str) -> set[str]:
    seen: set[str] = set()
    stack = list(graph.get(name, []))
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(graph.get(n, []))
    return seen
