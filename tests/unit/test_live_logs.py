"""OutputService's in-memory live logs: lines from chunks, followers from any line, the end of a log."""

from __future__ import annotations

import asyncio

import pytest

from treadle.errors import NotFound
from treadle.services.outputs import live_logs
from treadle.services.outputs.live_logs import LiveLogs


def test_a_follower_gets_every_line_from_where_it_asks_until_the_log_ends() -> None:
    async def main() -> tuple[list[str], list[str]]:
        logs = LiveLogs()
        log = logs.open("wf", "n1", 0)
        await logs.append(log, b"one\ntw")
        await logs.append(log, "o\nthr\u00e9".encode()[:-1])  # "é" split across two chunks

        async def follow(from_line: int) -> list[str]:
            return [line async for _, lines in logs.follow("wf", "n1", from_line) for line in lines]

        whole = asyncio.create_task(follow(0))
        resumed = asyncio.create_task(follow(1))
        await asyncio.sleep(0.01)
        await logs.append(log, "\u00e9".encode()[-1:] + b"e\nfour")
        await logs.close(log)  # the last line has no newline: it still counts
        return await whole, await resumed

    whole, resumed = asyncio.run(main())
    assert whole == ["one", "two", "thr\u00e9e", "four"]
    assert resumed == ["two", "thr\u00e9e", "four"]


def test_no_live_log_is_not_found_and_a_long_log_keeps_its_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_logs, "MAX_LINES", 3)

    async def main() -> list[tuple[int, list[str]]]:
        logs = LiveLogs()
        with pytest.raises(NotFound):
            async for _ in logs.follow("wf", "missing", 0):
                pass
        log = logs.open("wf", "n1", 0)
        await logs.append(log, b"1\n2\n3\n4\n5\n")
        await logs.close(log)
        return [batch async for batch in logs.follow("wf", "n1", 0)]

    assert asyncio.run(main()) == [(2, ["3", "4", "5"])]
