"""The engine's records: nodes, workflow state and decisions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


class NodePhase:
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"
    SKIPPED = "Skipped"
    OMITTED = "Omitted"


class NodeType:
    POD = "Pod"
    STEPS = "Steps"
    STEP_GROUP = "StepGroup"
    DAG = "DAG"
    SKIPPED = "Skipped"
    TASK_GROUP = "TaskGroup"
    RETRY = "Retry"
    SUSPEND = "Suspend"


FINAL_PHASES = frozenset({NodePhase.SUCCEEDED, NodePhase.FAILED, NodePhase.ERROR, NodePhase.SKIPPED, NodePhase.OMITTED})
# Phases a dependency may end in and still count as fulfilled.
FULFILLED_OK = frozenset({NodePhase.SUCCEEDED, NodePhase.SKIPPED})


def fnv32a(text: str) -> int:
    h = 0x811C9DC5
    for byte in text.encode():
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def node_id_for(workflow: str, node_name: str) -> str:
    """Argo's node id: the workflow name for the root, else name-<fnv32a(node name)>."""
    return workflow if node_name == workflow else f"{workflow}-{fnv32a(node_name)}"


def alternative_node_id(workflow: str, node_name: str, tries: int) -> str:
    """The id to try when node_id_for(...) is taken by a node of another name.

    fnv32a has 32 bits: n names collide about n²/2³³ times, and FNV's structure makes it worse for
    names alike (fan(6058:6058) and fan(6496:6496) collide under many workflow names). A 100,000-step
    fan-out has several such pairs; without this the later node overwrote the earlier one.
    """
    return f"{workflow}-{fnv32a(f'{node_name}#{tries}')}"


@dataclass
class Node:
    id: str
    name: str
    display_name: str
    type: str
    template_name: str
    phase: str = NodePhase.PENDING
    # The steps or dag node that owns this node's scope ({{steps.X}} / {{tasks.X}}).
    boundary_id: str = ""
    # The node whose progress this node's completion advances (a group, dag or steps node).
    parent_id: str = ""
    children: list[str] = field(default_factory=list)
    started_at: float | None = None
    finished_at: float | None = None
    message: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    attempt: int = 0
    # Creation order within the workflow; children are listed in this order.
    seq: int = 0
    # Set by the node table on every change, unique in the process; lets readers cache what they
    # derive from a node.
    rev: int = field(default=0, compare=False, repr=False)
    # Progress of composite nodes: next group (steps), task counters (dag, group).
    progress: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.phase in FINAL_PHASES

    @property
    def pod_name(self) -> str:
        return self.id if self.type == NodeType.POD else ""

    def to_record(self) -> dict[str, Any]:
        """The stored form. Children are left out: they are the nodes whose parent_id is this node."""
        return {name: getattr(self, name) for name in RECORD_FIELDS}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Node:
        return cls(**record)


# The fields of a node's stored record, in order.
RECORD_FIELDS = tuple(f.name for f in fields(Node) if f.name not in ("children", "rev"))


@dataclass
class WorkflowState:
    name: str
    uid: str
    phase: str = NodePhase.PENDING
    started_at: float | None = None
    finished_at: float | None = None
    message: str = ""
    # Global outputs: {"parameters": [{name, value}], "artifacts": [{name, stored}]}.
    outputs: dict[str, Any] = field(default_factory=dict)
    pods_total: int = 0
    pods_done: int = 0
    node_seq: int = 0
    pods_running: int = 0
    # Pod nodes waiting for workflow parallelism or for a resume.
    queued: list[str] = field(default_factory=list)
    suspended: bool = False
    # "Stop" (exit handlers still run), "Terminate", or "" while running normally.
    shutdown: str = ""
    # Phase and message of the main flow, kept while the exit handler runs.
    main_phase: str = ""
    main_message: str = ""
    exit_node: str = ""
    # Armed timers: key -> unix time.
    timers: dict[str, float] = field(default_factory=dict)
    # Lifecycle hooks waiting for their expression to become true.
    hooks: list[dict[str, Any]] = field(default_factory=list)
    # Hook nodes still running; the workflow completes only once they finish.
    open_hooks: int = 0
    completing: bool = False
    # Nodes waiting for a mutex or semaphore, and whether the workflow itself waits for its locks.
    lock_waiters: list[str] = field(default_factory=list)
    waiting_for_lock: bool = False
    # After a workflow retry: the first attempt number a re-created pod node gets, so that
    # (node, attempt) never repeats and every report stays attributable.
    next_attempts: dict[str, int] = field(default_factory=dict)
    # Node name -> id, for the rare nodes whose Argo id (node_id_for) another node had already.
    node_ids: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.phase in FINAL_PHASES

    @property
    def progress(self) -> str:
        return f"{self.pods_done}/{self.pods_total}"

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> WorkflowState:
        return cls(**record)


@dataclass(frozen=True)
class Launch:
    """Decision: start this pod node's attempt."""

    node_id: str
    attempt: int
    # Seconds the attempt may run (activeDeadlineSeconds or timeout); None for no limit.
    deadline_seconds: float | None = None


@dataclass(frozen=True)
class Timer:
    """Decision: call on_timer(key) at this unix time."""

    key: str
    at: float


@dataclass(frozen=True)
class Cancel:
    """Decision: kill this pod attempt; the engine already marked its node."""

    node_id: str
    attempt: int
    reason: str


@dataclass
class Decisions:
    launches: list[Launch] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    cancels: list[Cancel] = field(default_factory=list)
    # A lock was given back: workflows waiting for one may go on.
    locks_released: bool = False

    def __bool__(self) -> bool:
        return bool(self.launches or self.timers or self.cancels)
