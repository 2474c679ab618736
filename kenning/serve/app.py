"""``create_app``: one index behind the JSON API, the web page, the OpenAI-compatible routes
and the MCP server, as one FastAPI application.

    >>> from kenning.serve.app import create_app
    >>> app = create_app(".kenning/index.db")          # then: uvicorn.run(app)

Routes: ``/api/*`` (``api``), ``/v1/*`` (``openai_api``), ``/mcp`` (``mcp_server``, streamable
HTTP), the page at ``/`` (``web``), and the OpenAPI schema at ``/api/openapi.json``. Layers,
outermost first: CORS (only when origins are configured), ``security.Guard`` (hosts, origins,
API key), FastAPI's body limit (413), then the one error mapping (``errors``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from mcp.server.transport_security import TransportSecuritySettings
from starlette.concurrency import run_in_threadpool

from kenning.answer.answerer import Answering

from . import agent_api, api, cards_api, conflicts_api, errors, mcp_server, openai_api
from .pool import POOL_SIZE
from .security import Guard, Security
from .service import Service
from .web import router as web_router


def create_app(
    index_location: str | Path,
    *,
    embedder: str | None = None,
    security: Security | None = None,
    pool_size: int = POOL_SIZE,
    answering: Answering | None = None,
    mcp: bool = True,
    warm: bool = True,
) -> FastAPI:
    """The server's application for the index at ``index_location`` (it must exist).

    ``security`` defaults to no key, no host check and a 1 MB body limit: fine in-process;
    `kenning serve` passes ``Security.for_bind(host, key)``. ``answering`` defaults to the
    settings in kenning.toml. ``warm`` loads what answering needs at start-up (``pool.warm``:
    the search, the embedder's query and sentence sessions) rather than at the first request,
    so the first question (to the extractive answerer) is answered as fast as the tenth.
    """
    security = security or Security()
    service = Service(index_location, embedder, pool_size, answering)
    mcp_app = mcp_server.build(service) if mcp else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if mcp_app is not None:
                await stack.enter_async_context(mcp_app.session_manager.run())
            if warm:
                await run_in_threadpool(service.pool.warm)
            try:
                yield
            finally:
                service.close()

    app = FastAPI(
        title="kenning",
        summary="Search and ask your notes: JSON API, OpenAI-compatible routes, MCP.",
        version=_version(),
        lifespan=lifespan,
        max_body_size=security.max_body,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.service = service
    app.include_router(api.router)
    app.include_router(agent_api.router)
    app.include_router(conflicts_api.router)
    app.include_router(cards_api.router)
    app.include_router(openai_api.router)
    app.include_router(web_router)
    if mcp_app is not None:
        http = mcp_app.streamable_http_app(
            streamable_http_path="/mcp",
            max_request_body_size=security.max_body,
            # Guard checks the host of every route, MCP included, and the key
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        app.router.routes.extend(http.routes)
    errors.install(app)
    app.add_middleware(Guard, security=security)
    if security.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(security.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
            allow_credentials=True,
        )
    return app


def _version() -> str:
    try:
        return version("kenning")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"
