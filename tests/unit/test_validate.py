from __future__ import annotations

import pytest

from treadle.errors import InvalidSpec
from treadle.spec.convert import workflow_from_dict, workflow_to_dict
from treadle.spec.manifest import load_manifest
from treadle.spec.validate import validate_workflow

BASE = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: lint-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: greeting, value: hello}]}
  templates:
  - name: main
    steps:
    - - name: one
        template: say
        arguments: {parameters: [{name: text, value: "{{workflow.parameters.greeting}}"}]}
  - name: say
    inputs: {parameters: [{name: text}]}
    container: {image: busybox, command: [echo, "{{inputs.parameters.text}}"]}
"""


def errors_of(text: str, **kwargs: object) -> str:
    with pytest.raises(InvalidSpec) as info:
        validate_workflow(load_manifest(text, source="wf.yaml"), **kwargs)  # type: ignore[arg-type]
    return str(info.value)


def test_valid_manifest_round_trips_through_proto() -> None:
    wf = validate_workflow(load_manifest(BASE))
    again = workflow_to_dict(workflow_from_dict(wf))
    assert again["spec"]["templates"][0]["steps"][0][0]["name"] == "one"
    assert again["spec"] == wf["spec"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "wf.yaml: manifest is empty"),
        ("   \n# only a comment\n", "wf.yaml: manifest is empty"),
        ("kind: Workflow\nspec: [unclosed", "wf.yaml: malformed YAML at line 3, column 1"),
        ("kind: Pod\nspec: {}", "kind: unknown kind 'Pod'"),
        ("spec: {}", "kind: kind is required"),
    ],
)
def test_manifest_level_errors_name_the_file_or_field(text: str, expected: str) -> None:
    assert expected in errors_of(text)


def test_unknown_template() -> None:
    assert "spec.templates[0].steps[0][0].template: template 'nope' not found" in errors_of(
        BASE.replace("template: say", "template: nope")
    )


def test_unknown_entrypoint() -> None:
    assert "spec.entrypoint: entrypoint template 'missing' not found" in errors_of(
        BASE.replace("entrypoint: main", "entrypoint: missing")
    )


def test_dependency_cycle_is_named() -> None:
    text = BASE.replace(
        """    steps:
    - - name: one
        template: say
        arguments: {parameters: [{name: text, value: "{{workflow.parameters.greeting}}"}]}""",
        """    dag:
      tasks:
      - {name: a, template: say, dependencies: [c], arguments: {parameters: [{name: text, value: x}]}}
      - {name: b, template: say, dependencies: [a], arguments: {parameters: [{name: text, value: x}]}}
      - {name: c, template: say, dependencies: [b], arguments: {parameters: [{name: text, value: x}]}}""",
    )
    assert "spec.templates[0].dag.tasks: dependency cycle: a -> c -> b -> a" in errors_of(text)


def test_missing_required_parameter() -> None:
    text = BASE.replace('arguments: {parameters: [{name: text, value: "{{workflow.parameters.greeting}}"}]}', "")
    assert "required input parameter 'text' of template 'say' is not supplied" in errors_of(text)


def test_workflow_parameter_without_value_asks_for_p() -> None:
    text = BASE.replace("{name: greeting, value: hello}", "{name: greeting}")
    assert "spec.arguments.parameters[0].value: workflow parameter 'greeting' needs a value" in errors_of(text)
    assert validate_workflow(load_manifest(text), parameters={"greeting": "hey"})


def test_undefined_references() -> None:
    assert "spec.templates[1].container.command[1]: undefined reference {{inputs.parameters.nope}}" in errors_of(
        BASE.replace("{{inputs.parameters.text}}", "{{inputs.parameters.nope}}")
    )
    assert "undefined reference {{workflow.parameters.other}}" in errors_of(
        BASE.replace("workflow.parameters.greeting", "workflow.parameters.other")
    )
    assert "undefined reference {{steps.later.outputs.result}}" in errors_of(
        BASE.replace("workflow.parameters.greeting", "steps.later.outputs.result")
    )


def test_unsupported_field_is_named_not_ignored() -> None:
    text = BASE.replace("container: {image: busybox,", "container: {image: busybox, securityContext: {},")
    assert "spec.templates[1].container.securityContext: field is not supported by treadle" in errors_of(text)


def test_every_violation_is_reported() -> None:
    text = BASE.replace("template: say", "template: nope").replace("entrypoint: main", "entrypoint: gone")
    message = errors_of(text)
    assert "template 'nope' not found" in message and "entrypoint template 'gone' not found" in message


def test_numbers_in_yaml_become_text() -> None:
    wf = validate_workflow(load_manifest(BASE.replace("value: hello", "value: 42")))
    assert wf["spec"]["arguments"]["parameters"][0]["value"] == 42
    msg = workflow_from_dict(wf)
    assert msg.spec.arguments.parameters[0].value == "42"
