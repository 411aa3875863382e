"""Calling a template from a step or task: loops, `when`, argument binding, retries."""

from __future__ import annotations

from typing import Any

from treadle.errors import TreadleError
from treadle.services.scheduler.engine.core import KIND_TO_TYPE, EngineBase
from treadle.services.scheduler.engine.items import LoopError, item_label, item_names, parse_param_list, sequence
from treadle.services.scheduler.engine.model import FULFILLED_OK, Node, NodePhase, NodeType
from treadle.services.scheduler.engine.resolve import Scope
from treadle.spec.durations import parse_duration
from treadle.spec.scope import template_kind
from treadle.spec.template import UnresolvedReference, references, substitute, substitute_tree

# Input artifact sources that ArtifactService fetches (ImportArtifact), besides `from` and `raw`.
OUTSIDE_SOURCES = ("s3", "http", "git")


class BindError(TreadleError):
    """A step's inputs could not be bound when it was about to start."""


def has_loop(call: dict[str, Any]) -> bool:
    return bool(call.get("withItems") is not None or call.get("withParam") or call.get("withSequence"))


def call_flags(call: dict[str, Any]) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    if call.get("continueOn"):
        flags["continueOn"] = call["continueOn"]
    exit_hook = (call.get("hooks") or {}).get("exit") or ({"template": call["onExit"]} if call.get("onExit") else None)
    if exit_hook:
        flags["onExit"] = exit_hook
    return flags


class CallsMixin(EngineBase):
    _loop_items: dict[str, list[Any]]

    def _call(
        self, name: str, display: str, call: dict[str, Any], scope: Scope, *, boundary: str, parent: str,
        flags: dict[str, Any] | None = None, expand: bool = True,
    ) -> None:  # fmt: skip
        template_name = call["template"]
        if self._reuse(name, parent):
            return
        flags = {**(flags or {}), **call_flags(call)}
        if expand and call.get("hooks"):
            self._arm_hooks(name, call["hooks"], boundary)
        if expand and has_loop(call):
            self._call_loop(name, display, call, scope, boundary=boundary, parent=parent, flags=flags)
            return
        if call.get("when"):
            try:
                condition = substitute(call["when"], scope.lookup)
                from treadle.expr import evaluate_when

                run = evaluate_when(condition)
            except TreadleError as exc:
                self._error_node(
                    name, display, template_name, boundary, parent, f"invalid when {call['when']!r}: {exc}"
                )
                return
            if not run:
                node = self._new_node(
                    name, display, NodeType.SKIPPED, template_name, boundary=boundary, parent=parent, progress=flags
                )
                self._finish(node, NodePhase.SKIPPED, f"when '{condition}' evaluated false")
                return
        tmpl = self.templates[template_name]
        try:
            inputs = self._bind_inputs(tmpl, call.get("arguments") or {}, scope)
        except (UnresolvedReference, BindError, TreadleError) as exc:
            self._error_node(name, display, template_name, boundary, parent, str(exc), flags)
            return
        if tmpl.get("memoize"):
            try:
                memo = self._memo_entry(tmpl, inputs)
            except TreadleError as exc:
                self._error_node(name, display, template_name, boundary, parent, f"memoize: {exc}", flags)
                return
            flags = {**flags, "memoize": memo}
            if memo.get("hit"):
                self._memoized_node(name, display, template_name, boundary, parent, flags, memo.pop("outputs"))
                return
        if tmpl.get("retryStrategy"):
            retry = self._new_node(
                name, display, NodeType.RETRY, template_name, boundary=boundary, parent=parent,
                phase=NodePhase.RUNNING, progress=flags,
            )  # fmt: skip
            retry.inputs = inputs
            self.nodes.put(retry)
            self._next_attempt(retry)
            return
        self._execute_template(name, display, template_name, inputs, boundary=boundary, parent=parent, flags=flags)

    def _memo_entry(self, tmpl: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        """The memoize cache and key of a call, with the saved outputs when the cache holds fresh ones."""
        spec = tmpl["memoize"]
        scope = Scope(self._global, inputs, global_names=self._global_names)
        key = substitute(str(spec.get("key", "")), scope.lookup)
        cache = ((spec.get("cache") or {}).get("configMap") or {}).get("name") or "default"
        entry: dict[str, Any] = {"cache": cache, "key": key, "hit": False}
        saved = self.memo.get(cache, key) if self.memo is not None else None
        if saved is not None:
            outputs, saved_at = saved
            max_age = parse_duration(str(spec["maxAge"]), "memoize.maxAge") if spec.get("maxAge") else None
            if max_age is None or self.now() - saved_at <= max_age:
                entry.update(hit=True, outputs=outputs)
        return entry

    def _memoized_node(
        self, name: str, display: str, template_name: str, boundary: str, parent: str, flags: dict[str, Any],
        outputs: dict[str, Any],
    ) -> None:  # fmt: skip
        type_ = KIND_TO_TYPE[template_kind(self.templates[template_name])]
        node = self._new_node(name, display, type_, template_name, boundary=boundary, parent=parent, progress=flags)
        node.outputs = outputs
        self._finish(node, NodePhase.SUCCEEDED, "outputs reused from the memoize cache")

    def _reuse(self, name: str, parent: str) -> bool:
        """After a workflow retry, a node that already succeeded is kept as it is instead of running again."""
        existing = self._node_named(name)
        if existing is None or existing.phase not in FULFILLED_OK:
            return False
        parent_node = self.nodes.get(parent) if parent else None
        if parent_node is not None and not self._has_child(parent_node, existing.id):
            self._add_child(parent_node, existing.id)
            self.nodes.put(parent_node)
        self._finished.append(existing.id)
        return True

    def _call_loop(
        self, name: str, display: str, call: dict[str, Any], scope: Scope, *, boundary: str, parent: str,
        flags: dict[str, Any],
    ) -> None:  # fmt: skip
        template_name = call["template"]
        try:
            items = self._items(call, scope)
        except (LoopError, UnresolvedReference, TreadleError) as exc:
            self._error_node(name, display, template_name, boundary, parent, str(exc), flags)
            return
        group_flags = {k: v for k, v in flags.items() if k != "onExit"}
        group = self._new_node(
            name, display, NodeType.TASK_GROUP, template_name, boundary=boundary, parent=parent,
            phase=NodePhase.RUNNING, progress={**group_flags, "pending": len(items), "failed": ""},
        )  # fmt: skip
        if not items:
            self._finish(group, NodePhase.SKIPPED, "Skipped, empty params")
            return
        source = self._loop_source(group)
        if source is not None and source[0] is call and not flags.get("onExit"):
            group.progress.update(next=0, count=len(items))
            self._loop_items[group.id] = items
            self._widen_loop(group)
            return
        for i, item in enumerate(items):
            label = f"({i}:{item_label(item)})"
            self._call(
                name + label, display + label, call, scope.with_names(item_names(item)),
                boundary=boundary, parent=group.id, flags=flags, expand=False,
            )  # fmt: skip

    def _loop_source(self, group: Node) -> tuple[dict[str, Any], Node] | None:
        raise NotImplementedError

    def _widen_loop(self, group: Node) -> None:
        raise NotImplementedError

    def _items(self, call: dict[str, Any], scope: Scope) -> list[Any]:
        if call.get("withItems") is not None:
            items = call["withItems"]
            return [self._substitute_item(i, scope) for i in items]
        if call.get("withParam"):
            return parse_param_list(substitute(str(call["withParam"]), scope.lookup))
        seq = call["withSequence"]
        parts = {k: substitute(str(seq.get(k, "") or ""), scope.lookup) for k in ("count", "start", "end", "format")}
        return list(sequence(parts["count"], parts["start"], parts["end"], parts["format"]))

    def _substitute_item(self, item: Any, scope: Scope) -> Any:
        if isinstance(item, str):
            return substitute(item, scope.lookup)
        if isinstance(item, dict):
            return {k: self._substitute_item(v, scope) for k, v in item.items()}
        return item

    def _error_node(
        self, name: str, display: str, template_name: str, boundary: str, parent: str, message: str,
        flags: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        tmpl = self.templates.get(template_name, {})
        type_ = KIND_TO_TYPE.get(template_kind(tmpl), NodeType.SKIPPED)
        node = self._new_node(name, display, type_, template_name, boundary=boundary, parent=parent, progress=flags)
        if type_ == NodeType.POD:
            node.started_at = None
        self._finish(node, NodePhase.ERROR, message)

    def _bind_inputs(self, tmpl: dict[str, Any], args: dict[str, Any], scope: Scope) -> dict[str, Any]:
        declared = tmpl.get("inputs") or {}
        given = {p.get("name"): p for p in args.get("parameters") or []}
        params = []
        for p in declared.get("parameters") or []:
            name = p["name"]
            if name in given and given[name].get("value") is not None:
                value = substitute(str(given[name]["value"]), scope.lookup)
            elif p.get("value") is not None:
                value = substitute(str(p["value"]), scope.lookup)
            elif p.get("default") is not None:
                value = substitute(str(p["default"]), scope.lookup)
            else:
                raise BindError(f"input parameter {name!r} of template {tmpl['name']!r} was not supplied")
            if p.get("enum") and value not in p["enum"]:
                raise BindError(f"input parameter {name!r} value {value!r} is not one of {p['enum']}")
            params.append({"name": name, "value": value})
        given_arts = {a.get("name"): a for a in args.get("artifacts") or []}
        # A caller's argument names the caller's scope; a template's own source may name its input parameters.
        own_scope = Scope(self._global, {"parameters": params}, global_names=self._global_names)
        artifacts = []
        for a in declared.get("artifacts") or []:
            argument = given_arts.get(a["name"])
            source = argument or a
            names = scope if argument is not None else own_scope
            entry: dict[str, Any] = {"name": a["name"], "path": a.get("path", "")}
            if a.get("optional") is not None or source.get("optional"):
                entry["optional"] = bool(a.get("optional") or source.get("optional"))
            for key in ("mode", "recurseMode", "archive", "subPath"):
                # As Argo merges them: the template says where and how the file lands, the source what it holds.
                first, second = (a, source) if key in ("mode", "recurseMode") else (source, a)
                chosen = first.get(key) if first.get(key) is not None else second.get(key)
                if chosen is not None:
                    entry[key] = substitute(str(chosen), names.lookup) if key == "subPath" else chosen
            outside = next((kind for kind in OUTSIDE_SOURCES if source.get(kind)), None)
            if source.get("from"):
                try:
                    origin = scope.artifact(references(source["from"])[0])
                except UnresolvedReference:
                    if a.get("optional") or source.get("optional"):
                        artifacts.append(entry)
                        continue
                    raise BindError(f"input artifact {a['name']!r}: {source['from']} was not produced") from None
                if origin.get("stored"):
                    entry["stored"] = origin["stored"]
                elif not a.get("optional"):
                    raise BindError(f"input artifact {a['name']!r}: {source['from']} has no stored object")
            elif source.get("raw") is not None:
                entry["raw"] = {"data": substitute(str(source["raw"].get("data", "")), names.lookup)}
            elif outside is not None:
                # Fetched by ArtifactService when the step starts (services/artifacts/importer.py).
                entry[outside] = substitute_tree(source[outside], names.lookup)
            elif not entry.get("optional"):
                raise BindError(f"input artifact {a['name']!r} of template {tmpl['name']!r} was not supplied")
            artifacts.append(entry)
        return {"parameters": params, "artifacts": artifacts}
