"""Durable state shared helpers. Each service owns its own tables.

`sqlite.open_database` opens the one connection a process shares (WAL, synchronous=FULL);
`durability.GroupCommit` (the connection's `group`) lets callers skip the per-commit fsync and
share one fdatasync before they acknowledge; its docstring says why that is as durable as FULL.
"""
