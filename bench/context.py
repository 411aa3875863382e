"""What every workload is given: its sizes, whether peers run, and costs measured once per suite run."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from bench import commands
from bench.config import FULL, SMOKE, Sizes
from bench.peers import snakemake_peer, venv


@dataclass
class Context:
    smoke: bool
    # None when the peers run; else why they do not.
    peers_skipped: str | None
    # --profile DIR: every server is sampled with py-spy into DIR.
    profile_dir: Path | None = None
    sizes: Sizes = field(init=False)
    _profiles: itertools.count[int] = field(default_factory=itertools.count, init=False)
    _bare_step: float | None = field(default=None, init=False)
    _snakemake_startup: float | None = field(default=None, init=False)
    _snakemake_startup_known: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.sizes = SMOKE if self.smoke else FULL

    @classmethod
    def create(cls, *, smoke: bool, peers: bool, profile_dir: Path | None = None) -> Context:
        skipped = "--no-peers was given" if not peers else venv.missing_reason()
        return cls(smoke=smoke, peers_skipped=skipped, profile_dir=profile_dir)

    def profile_path(self, name: str) -> Path | None:
        """Where to record the next server's profile, or None without --profile."""
        if self.profile_dir is None:
            return None
        return self.profile_dir / f"{next(self._profiles):02d}-{name}.raw"

    @property
    def peers(self) -> bool:
        return self.peers_skipped is None

    async def bare_step_seconds(self) -> float:
        """What one step's command costs alone (measured once per suite run)."""
        if self._bare_step is None:
            self._bare_step = await asyncio.to_thread(commands.bare_step_seconds, 10 if self.smoke else 50)
        return self._bare_step

    async def snakemake_startup_seconds(self) -> float | None:
        """Snakemake's fixed cost per invocation (measured once per suite run)."""
        if not self._snakemake_startup_known:
            self._snakemake_startup = await asyncio.to_thread(
                snakemake_peer.startup_seconds, timeout=self.sizes.timeout
            )
            self._snakemake_startup_known = True
        return self._snakemake_startup
