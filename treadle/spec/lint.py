"""Per-template lint rules: shape, inputs and outputs, `{{...}}` references, field values."""

from __future__ import annotations

import re
from typing import Any

from treadle.errors import FieldViolation, InvalidSpec
from treadle.spec import scope
from treadle.spec.artifact_gc import artifact_gc_violations
from treadle.spec.durations import parse_duration
from treadle.spec.lint_calls import OUTSIDE_SOURCES, CallLinter, has_artifact_source
from treadle.spec.template import TAG, references, strings_with_paths

RETRY_POLICIES = ("Always", "OnFailure", "OnError", "OnTransientError")


class Linter(CallLinter):
    def __init__(self, spec: dict[str, Any], out: list[FieldViolation], *, partial: bool = False) -> None:
        """partial: a WorkflowTemplate, whose entrypoint and argument values a workflow may supply."""
        self.spec = spec
        self.out = out
        self.partial = partial
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
        self._check_spec_fields()
        self._check_arguments()
        entry = self.spec.get("entrypoint", "")
        if not entry and self.partial:
            pass
        elif not entry:
            self.fail("spec.entrypoint", "entrypoint is required")
        elif entry not in self.templates:
            self.fail("spec.entrypoint", f"entrypoint template {entry!r} not found")
        elif not self.partial:
            args = self.spec.get("arguments") or {}
            supplied = {p.get("name") for p in args.get("parameters") or []}
            arts = {a.get("name") for a in args.get("artifacts") or []}
            self._check_call_inputs("spec.arguments", self.templates[entry], supplied, arts)
        for i, tmpl in enumerate(templates):
            self._check_template(f"spec.templates[{i}]", tmpl)

    def _check_spec_fields(self) -> None:
        spec = self.spec
        if spec.get("workflowTemplateRef"):
            self.fail("spec.workflowTemplateRef", "WorkflowTemplates are resolved by the server: lint with --server")
        if spec.get("onExit") and spec["onExit"] not in self.templates:
            self.fail("spec.onExit", f"template {spec['onExit']!r} not found")
        self._check_hooks("spec.hooks", spec.get("hooks") or {}, self.globals)
        self.out.extend(artifact_gc_violations(spec))
        for field in ("activeDeadlineSeconds", "parallelism"):
            value = spec.get(field)
            if value is not None and int(value) < 0:
                self.fail(f"spec.{field}", f"{field} must not be negative")

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
            if p.get("value") is None and p.get("valueFrom") is None and not self.partial:
                self.fail(f"{path}.value", f"workflow parameter {name!r} needs a value (pass -p {name}=VALUE)")
            elif p.get("enum") and str(p.get("value")) not in p["enum"]:
                self.fail(f"{path}.value", f"value {p.get('value')!r} of {name!r} is not one of {p['enum']}")
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
            if a.get("name") not in artifacts and not has_artifact_source(a) and not a.get("optional"):
                self.fail(
                    f"{path}.artifacts",
                    f"required input artifact {a.get('name')!r} of template {tmpl.get('name')!r} is not supplied",
                )

    def _check_template(self, path: str, tmpl: dict[str, Any]) -> None:
        kind = scope.template_kind(tmpl)
        if not kind:
            present = [k for k in scope.KINDS if tmpl.get(k) is not None]
            what = "none" if not present else " and ".join(present)
            self.fail(path, f"a template needs exactly one of container, script, steps, dag or suspend (has {what})")
            return
        self._check_template_fields(path, tmpl)
        allowed = self.globals | scope.input_names(tmpl)
        if tmpl.get("retryStrategy"):
            allowed |= {"retries"}
        self._check_io_declarations(path, tmpl, kind)
        if kind in ("container", "script", "suspend"):
            allowed |= {"pod.name", "node.name"}
            body = {k: v for k, v in tmpl.items() if k not in ("name", "outputs", "inputs", "retryStrategy")}
            self._check_refs(path, body, allowed)
            inputs = tmpl.get("inputs") or {}
            for i, a in enumerate(inputs.get("artifacts") or []):
                where = {"path": a.get("path", ""), **{k: a[k] for k in (*OUTSIDE_SOURCES, "subPath") if a.get(k)}}
                self._check_refs(f"{path}.inputs.artifacts[{i}]", where, allowed)
            self._check_refs(f"{path}.outputs", tmpl.get("outputs") or {}, allowed)
        elif kind == "steps":
            self._check_steps(path, tmpl, allowed)
        else:
            self._check_dag(path, tmpl, allowed)

    def _check_template_fields(self, path: str, tmpl: dict[str, Any]) -> None:
        retry = tmpl.get("retryStrategy") or {}
        if retry:
            if retry.get("retryPolicy") and retry["retryPolicy"] not in RETRY_POLICIES:
                self.fail(f"{path}.retryStrategy.retryPolicy", f"must be one of {', '.join(RETRY_POLICIES)}")
            self._check_number(f"{path}.retryStrategy.limit", retry.get("limit"))
            backoff = retry.get("backoff") or {}
            for field in ("duration", "maxDuration", "cap"):
                self._check_duration(f"{path}.retryStrategy.backoff.{field}", backoff.get(field))
            self._check_number(f"{path}.retryStrategy.backoff.factor", backoff.get("factor"))
        self._check_number(f"{path}.activeDeadlineSeconds", tmpl.get("activeDeadlineSeconds"))
        self._check_duration(f"{path}.timeout", tmpl.get("timeout"))
        self._check_duration(f"{path}.suspend.duration", (tmpl.get("suspend") or {}).get("duration"))
        if tmpl.get("parallelism") is not None and int(tmpl["parallelism"]) < 0:
            self.fail(f"{path}.parallelism", "parallelism must not be negative")

    def _check_number(self, field: str, value: Any) -> None:
        if value in (None, "") or (isinstance(value, str) and TAG.search(value)):
            return
        if not re.fullmatch(r"\d+(\.\d+)?", str(value).strip()):
            self.fail(field, f"{value!r} is not a number")

    def _check_duration(self, field: str, value: Any) -> None:
        if value in (None, "") or (isinstance(value, str) and TAG.search(value)):
            return
        try:
            parse_duration(value, field)
        except InvalidSpec as exc:
            self.out.extend(exc.violations)

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
                        self._check_output_parameter(ipath, item, kind)
                    if section == "outputs" and group == "artifacts" and not leaf and not item.get("from"):
                        self.fail(f"{ipath}.from", f"output artifact {name!r} of a {kind} template needs from")

    def _check_output_parameter(self, path: str, param: dict[str, Any], kind: str) -> None:
        vf = param.get("valueFrom") or {}
        name = param.get("name")
        if kind in ("container", "script"):
            if not vf.get("path"):
                self.fail(f"{path}.valueFrom.path", f"output parameter {name!r} needs valueFrom.path")
        elif kind == "suspend":
            if vf.get("supplied") is None and vf.get("default") is None and param.get("value") is None:
                self.fail(
                    f"{path}.valueFrom.supplied", f"output parameter {name!r} of a suspend template needs supplied"
                )
        elif not vf.get("parameter") and not vf.get("expression") and param.get("value") is None:
            self.fail(
                f"{path}.valueFrom.parameter",
                f"output parameter {name!r} of a {kind} template needs valueFrom.parameter",
            )

    def _check_refs(self, path: str, tree: Any, allowed: set[str], *, items: bool = False) -> None:
        for where, text in strings_with_paths(tree, path):
            for ref in references(text):
                if ref.startswith("="):
                    continue  # expressions are checked when they run; their names are dynamic
                if items and (ref == "item" or ref.startswith("item.")):
                    continue
                if ref.startswith(("workflow.labels.", "workflow.annotations.")):
                    continue  # labels can be added at submission; a missing one fails when the step resolves
                if ref not in allowed:
                    self.fail(where, f"undefined reference {{{{{ref}}}}}")
