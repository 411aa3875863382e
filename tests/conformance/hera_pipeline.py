"""A workflow built with Hera, Argo's Python SDK, the way a Hera user writes one.

A DAG whose script task measures a word list (the result feeds the next task), a
container task that reports on it, and a retried script task with a default
input. `build()` returns the Hera Workflow; `python hera_pipeline.py` prints the
YAML Hera renders, which is exactly what the conformance test submits.
"""

# No `from __future__ import annotations`: Hera reads the script functions' annotations as real types.
from hera.workflows import DAG, Container, Parameter, Resources, RetryStrategy, Task, Workflow, script


@script(image="python:3.12-alpine", command=["python3"])
def count_letters(words: list) -> None:  # type: ignore[type-arg]  # Hera maps the bare type
    # Hera's script preamble has already parsed the JSON parameter into a list.
    print(sum(len(word) for word in words))


@script(image="python:3.12-alpine", command=["python3"], retry_strategy=RetryStrategy(limit="2"))
def label_bolt(total: str, prefix: str = "bolt") -> None:
    print(f"{prefix}-{int(total) * 10}")


def build(*, with_resources: bool = False) -> Workflow:
    """The pipeline; with_resources adds the CPU and memory requests most Hera users put on their containers."""
    resources = Resources(cpu_request="100m", memory_request="64Mi") if with_resources else None
    report = Container(
        name="report",
        image="busybox:1.36",
        command=["sh", "-c"],
        args=['echo "the {{inputs.parameters.fabric}} bolt holds {{inputs.parameters.letters}} letters"'],
        inputs=[Parameter(name="fabric"), Parameter(name="letters")],
        resources=resources,
    )
    with Workflow(
        generate_name="hera-loom-",
        entrypoint="weave",
        arguments=[
            Parameter(name="fabric", value="tweed"),
            Parameter(name="words", value='["warp", "weft", "heddle"]'),
        ],
    ) as workflow:
        with DAG(name="weave"):
            counted = count_letters(name="count", arguments={"words": "{{workflow.parameters.words}}"})
            reported = report(
                name="tell",
                arguments={"fabric": "{{workflow.parameters.fabric}}", "letters": counted.result},
            )
            labelled = label_bolt(name="label", arguments={"total": counted.result})
            assert isinstance(counted, Task) and isinstance(reported, Task) and isinstance(labelled, Task)
            counted >> [reported, labelled]
    return workflow


if __name__ == "__main__":
    print(build().to_yaml())
