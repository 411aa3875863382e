"""Graph helpers for DAG templates."""

from __future__ import annotations


def find_cycle(graph: dict[str, list[str]]) -> list[str]:
    """A dependency cycle as a path of names (first == last), or [] when acyclic.

    graph maps a node to the nodes it depends on. Iterative, so deep graphs
    do not hit the recursion limit.
    """
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(graph, WHITE)
    for start in graph:
        if color[start] != WHITE:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                color[node] = GREY
                path.append(node)
            deps = graph.get(node, [])
            if i < len(deps):
                stack.append((node, i + 1))
                nxt = deps[i]
                if color.get(nxt, BLACK) == GREY:
                    return [*path[path.index(nxt) :], nxt]
                if color.get(nxt) == WHITE:
                    stack.append((nxt, 0))
            else:
                color[node] = BLACK
                path.pop()
    return []
