"""What the local runtime cannot do, said plainly instead of silently ignored.

The local runtime runs a step's command as a process on this host: there is no
image, so no sidecar to share a network with, no daemon address, no volume to
mount and no secret to turn into an environment variable. A step that asks
for one of these ends with phase Error and a message naming the field and the
way out (`--runtime docker`). resources are accepted and not enforced
(docs/compatibility.md says so): a limit is a ceiling, and running without
one does not change what a correct step computes.
"""

from __future__ import annotations

from typing import Any

ADVICE = "the local runtime runs steps as processes on this host; run the server with --runtime docker"


def unsupported_on_local(template: dict[str, Any]) -> str | None:
    """Why the local runtime cannot run this resolved template, or None when it can."""
    name = template.get("name", "")
    problems: list[str] = []
    if template.get("sidecars"):
        problems.append("sidecars")
    if template.get("daemon"):
        problems.append("daemon: true")
    for kind in ("container", "script"):
        spec = template.get(kind) or {}
        if spec.get("volumeMounts"):
            problems.append(f"{kind}.volumeMounts")
        for i, variable in enumerate(spec.get("env") or []):
            if variable.get("valueFrom"):
                problems.append(f"{kind}.env[{i}].valueFrom ({variable.get('name', '')})")
    if not problems:
        return None
    return f"template {name!r} uses {', '.join(problems)}: {ADVICE}"
