"""Resolver context: the store, the snapshot cache and per-request loaders."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio.to_thread
from strawberry.dataloader import DataLoader

from service.config import Settings
from service.model import CI
from service.snapshot import SnapshotCache
from service.store.base import GraphStore

T = TypeVar("T")


@dataclass
class Services:
    """Long-lived objects shared by all requests."""

    store: GraphStore
    snapshots: SnapshotCache
    settings: Settings


async def run_blocking(function: Callable[..., T], *args: Any) -> T:
    """Run a blocking store or analysis call in a worker thread, off the event loop."""
    return await anyio.to_thread.run_sync(function, *args)


@dataclass
class RequestContext:
    services: Services
    ci_loader: DataLoader[str, CI | None] = field(init=False)

    def __post_init__(self) -> None:
        store = self.services.store

        async def load_cis(ids: Sequence[str]) -> list[CI | None]:
            found = await run_blocking(store.get_cis, list(ids))
            return [found.get(ci_id) for ci_id in ids]

        self.ci_loader = DataLoader(load_fn=load_cis)

    @property
    def store(self) -> GraphStore:
        return self.services.store
