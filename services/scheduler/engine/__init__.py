"""The pure workflow engine: events in, decisions out. Imports no transport or infrastructure."""

from treadle.services.scheduler.engine.model import (
    FINAL_PHASES,
    Cancel,
    Decisions,
    Launch,
    Node,
    NodePhase,
    NodeType,
    Timer,
    WorkflowState,
    node_id_for,
)
from treadle.services.scheduler.engine.nodes import PACK_ABOVE, MemoryNodeTable, NodeTable
from treadle.services.scheduler.engine.workflow import WorkflowEngine

__all__ = [
    "FINAL_PHASES",
    "PACK_ABOVE",
    "Cancel",
    "Decisions",
    "Launch",
    "MemoryNodeTable",
    "Node",
    "NodePhase",
    "NodeTable",
    "NodeType",
    "Timer",
    "WorkflowEngine",
    "WorkflowState",
    "node_id_for",
]
