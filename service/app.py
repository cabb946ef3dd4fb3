"""The Starlette application: GraphQL at /graphql, probes and metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from service.api.context import RequestContext, Services, run_blocking
from service.api.schema import schema
from service.config import Settings, open_store
from service.errors import FaultgraphError, StoreUnavailableError
from service.snapshot import SnapshotCache
from service.store.base import GraphStore

logger = logging.getLogger(__name__)


class Metrics:
    """Prometheus metrics of one application instance, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "faultgraph_graphql_requests", "GraphQL requests answered, by outcome.", ["outcome"], registry=self.registry
        )
        self.duration = Histogram(
            "faultgraph_graphql_request_seconds", "Time to answer a GraphQL request.", registry=self.registry
        )
        self.snapshot_version = Gauge(
            "faultgraph_snapshot_version", "Store version of the current topology snapshot.", registry=self.registry
        )
        self.snapshot_cis = Gauge("faultgraph_snapshot_cis", "CIs in the topology snapshot.", registry=self.registry)
        self.snapshot_relationships = Gauge(
            "faultgraph_snapshot_relationships", "Relationships in the topology snapshot.", registry=self.registry
        )


class FaultgraphGraphQL(GraphQL):
    def __init__(self, services: Services, metrics: Metrics) -> None:
        super().__init__(schema, graphql_ide="graphiql")
        self.services = services
        self.metrics = metrics

    async def get_context(self, request: Request | WebSocket, response: Any) -> RequestContext:
        return RequestContext(services=self.services)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        try:
            await super().__call__(scope, receive, send)
        except Exception:
            self.metrics.requests.labels(outcome="exception").inc()
            raise
        self.metrics.duration.observe(time.perf_counter() - started)
        self.metrics.requests.labels(outcome="answered").inc()


def create_app(settings: Settings, store: GraphStore | None = None) -> Starlette:
    """Build the application; the store is opened from the settings unless given."""
    store = store if store is not None else open_store(settings)
    services = Services(store=store, snapshots=SnapshotCache(store), settings=settings)
    metrics = Metrics()
    graphql_app = FaultgraphGraphQL(services, metrics)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await run_blocking(store.check)
        except FaultgraphError as exc:
            return JSONResponse({"status": "unavailable", "reason": exc.message}, status_code=503)
        return JSONResponse({"status": "ready", "store": settings.describe_store()})

    async def metrics_endpoint(request: Request) -> Response:
        try:
            topology = await run_blocking(services.snapshots.current)
        except StoreUnavailableError:
            topology = None
        if topology is not None:
            metrics.snapshot_version.set(topology.version)
            metrics.snapshot_cis.set(topology.node_count)
            metrics.snapshot_relationships.set(topology.edge_count)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        logger.info("faultgraph started on %s", settings.describe_store())
        try:
            yield
        finally:
            store.close()
            logger.info("faultgraph stopped")

    routes = [
        Route("/graphql", graphql_app, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.services = services
    return app
