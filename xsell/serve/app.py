"""`xsell serve`: a read-only JSON API over the published file (FastAPI on uvicorn).

It follows a republish. A watcher thread looks at the published path every
``poll_seconds``; when a publish has renamed a new file onto it (another device, inode,
size or modification time), the watcher opens the new file next to the old one and
swaps it in. Each request takes the current file once and answers from it alone, so an
answer never mixes two builds; a file is closed when the last request using it ends (on
Linux the renamed-over file lives on until then). Every answer names its build in the
``X-Xsell-Run-Id`` header.
"""

import contextlib
import gc
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Literal

import duckdb
from fastapi import FastAPI, Query
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi_offline import FastAPIOffline

from xsell.serve import models
from xsell.serve.published import FileChangedError, FileIdentity
from xsell.serve.queries import Answers, NotFound, Warehouse

log = logging.getLogger("uvicorn.error")

RUN_ID_HEADER = "X-Xsell-Run-Id"
# "queries" while the lookups of a newly opened file are being read into memory, "memory"
# once they are (see xsell.serve.queries)
ANSWERED_FROM_HEADER = "X-Xsell-Answered-From"
MAX_ID_LENGTH = 200
MAX_LIMIT = 100
MAX_PAGE = 1000
MAX_OFFSET = 100_000_000

DESCRIPTION = """Read-only answers from the published xsell build: a customer's RFM, lifetime
value and segments, their next best offers, a product's bundles and neighbours, the
segments, and which analyses ran on this store's data. Every answer names its build in the
`X-Xsell-Run-Id` header; `/health` gives the run id, publish time and coverage. An answer
whose analysis did not run on the data says so (`not_available`, with the reason)."""


CustomerId = Annotated[str, PathParam(min_length=1, max_length=MAX_ID_LENGTH,
                                      description="Customer id as in the raw data.")]
ProductId = Annotated[str, PathParam(min_length=1, max_length=MAX_ID_LENGTH,
                                     description="Product id as in the raw data.")]
SegmentName = Annotated[str, PathParam(min_length=1, max_length=MAX_ID_LENGTH,
                                       description="Segment name, e.g. At Risk.")]
SegmentKind = Annotated[Literal["rfm", "ml"] | None, Query(
    description="rfm or ml; by default an RFM segment of that name, else a KMeans one.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most items per list.")]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Customers per page.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Customers to skip.")]
CUSTOMER_LOOKUPS = ("customer", "rfm", "lifetime_value", "ml_segment", "restaurant_propensity")


class PublishedFile:
    """The published file, followed across republishes (see the module docstring)."""

    def __init__(self, path: Path, *, poll_seconds: float = 0.1, threads: int = 1):
        self.path = Path(path).resolve()
        self.poll_seconds = poll_seconds
        self.threads = threads
        self._lock = threading.Lock()
        self._current = Warehouse(self.path, threads=threads)
        self._failed: FileIdentity | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._index_in_background(self._current)

    @property
    def current(self) -> Warehouse:
        return self._current

    @contextlib.contextmanager
    def use(self) -> Iterator[Warehouse]:
        with self._lock:
            warehouse = self._current
            warehouse.active += 1
        try:
            yield warehouse
        finally:
            self._release(warehouse)

    def _release(self, warehouse: Warehouse) -> None:
        with self._lock:
            warehouse.active -= 1
            close = warehouse.retired and warehouse.active == 0
        if close:
            warehouse.close()

    def _index_in_background(self, warehouse: Warehouse) -> None:
        """Read the file's lookups into memory while requests are answered by queries;
        stop early if the file is replaced meanwhile."""
        with self._lock:
            warehouse.active += 1  # not closed while the index is read

        def build() -> None:
            try:
                started = time.perf_counter()
                warehouse.build_index(stop=lambda: warehouse.retired or self._stop.is_set())
                # millions of long-lived objects: keep the cyclic collector from walking
                # them again and again (pauses of a tenth of a second); they are freed by
                # reference counting when the file is replaced
                gc.freeze()
                if not warehouse.retired:
                    log.info("xsell serve: run %s answered from memory (read in %.1f s)",
                             warehouse.run_id, time.perf_counter() - started)
            except duckdb.Error as error:  # closed underneath, or unreadable: queries stay
                log.warning("xsell serve: lookups of run %s stay queries: %s",
                            warehouse.run_id, error)
            finally:
                self._release(warehouse)

        threading.Thread(target=build, name="xsell-serve-index", daemon=True).start()

    def refresh(self) -> bool:
        """Open the file at the path if it is not the one being served; True if swapped."""
        try:
            identity = FileIdentity.of(self.path)
        except OSError:
            return False  # gone for the moment: keep serving the last file
        if identity == self._current.identity or identity == self._failed:
            return False
        try:
            fresh = Warehouse(self.path, threads=self.threads)
        except FileChangedError:
            return False  # replaced again while opening: the next look takes it
        except (duckdb.Error, OSError) as error:
            self._failed = identity
            log.error("xsell serve: cannot open the new %s (%s); still serving run %s",
                      self.path, error, self._current.run_id)
            return False
        self._index_in_background(fresh)
        with self._lock:
            old, self._current = self._current, fresh
            old.retired = True
            close = old.active == 0
        if close:
            old.close()
        log.info("xsell serve: now serving run %s (published %s)", fresh.run_id,
                 fresh.info.published_at)
        return True

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="xsell-serve-watch",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._current.retired = True
            close = self._current.active == 0
        if close:
            self._current.close()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # never let the watcher die: log, and look again
                log.exception("xsell serve: watching %s failed", self.path)


def _json(body, status: int, warehouse: Warehouse) -> Response:
    content = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    headers = {RUN_ID_HEADER: warehouse.run_id,
               ANSWERED_FROM_HEADER: "memory" if warehouse.index_ready else "queries"}
    return Response(content.encode("utf-8"), status_code=status,
                    media_type="application/json", headers=headers)


def create_app(db_path: Path, *, poll_seconds: float = 0.1, threads: int = 1) -> FastAPI:
    """The API over the published file at db_path (opened now: a missing or unreadable
    file raises here, before any server starts)."""
    published = PublishedFile(db_path, poll_seconds=poll_seconds, threads=threads)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        info = published.current.info
        log.info("xsell serve: %s, run %s (published %s); OpenAPI page at /docs", info.path,
                 info.run_id, info.published_at)
        published.start()
        try:
            yield
        finally:
            published.stop()

    app = FastAPIOffline(
        title="xsell", version="1", description=DESCRIPTION, lifespan=lifespan
    )
    app.state.published = published

    def respond(warehouse: Warehouse, build: Callable[[Answers], dict]) -> Response:
        try:
            body = build(warehouse.answers())
        except NotFound as missing:
            error = {"detail": str(missing)}
            if missing.analysis:
                error["analysis"] = missing.analysis
            return _json(error, 404, warehouse)
        return _json(body, 200, warehouse)

    async def answer(build: Callable[[Answers], dict], *lookups: str) -> Response:
        """The answer from the current file: on the event loop when the lookups it needs
        are in memory (microseconds), else in a worker thread (queries)."""
        with published.use() as warehouse:
            if warehouse.in_memory(lookups):
                return respond(warehouse, build)
            return await run_in_threadpool(respond, warehouse, build)

    @app.exception_handler(duckdb.Error)
    async def duckdb_failed(_request, error: duckdb.Error):
        log.error("xsell serve: query failed: %s", error)
        return JSONResponse(
            {"detail": f"The published file could not be read: {type(error).__name__}"},
            status_code=500,
        )

    not_found = {404: {"model": models.Error, "description": "Unknown id"}}

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/health", response_model=models.Health, tags=["build"],
             summary="The build being served: run id, publish time, coverage")
    async def health():
        return await answer(lambda a: a.health())

    @app.get("/customers/{customer_id}", response_model=models.Customer, responses=not_found,
             tags=["customers"], summary="RFM, lifetime value, segments, restaurant propensity")
    async def customer(customer_id: CustomerId):
        return await answer(lambda a: a.customer(customer_id), *CUSTOMER_LOOKUPS)

    @app.get("/customers/{customer_id}/recommendations", response_model=models.Recommendations,
             responses=not_found, tags=["customers"],
             summary="Next best offers, with the reason for each")
    async def recommendations(customer_id: CustomerId, limit: Limit = 10):
        return await answer(lambda a: a.recommendations(customer_id, limit),
                            "customer", "recommendations", "cold_start")

    @app.get("/products/{product_id}/bundles", response_model=models.Bundles,
             responses=not_found, tags=["products"],
             summary="Association rules and complete-the-room add-ons")
    async def bundles(product_id: ProductId, limit: Limit = 10):
        return await answer(lambda a: a.bundles(product_id, limit),
                            "product", "rules", "category_rules", "room", "completes")

    @app.get("/products/{product_id}/similar", response_model=models.Similar,
             responses=not_found, tags=["products"],
             summary="Affinity neighbours and up-sell candidates")
    async def similar(product_id: ProductId, limit: Limit = 10):
        return await answer(lambda a: a.similar(product_id, limit), "product", "affinity")

    @app.get("/segments", response_model=models.Segments, tags=["segments"],
             summary="RFM segments (with revenue at risk) and KMeans segments")
    async def segments():
        return await answer(lambda a: a.segments(), "rfm_segments", "ml_segments")

    @app.get("/segments/{name}/customers", response_model=models.SegmentPage,
             responses=not_found, tags=["segments"],
             summary="A segment's customers, by lifetime value, a page at a time")
    async def segment_customers(
        name: SegmentName, kind: SegmentKind = None, limit: PageSize = 100, offset: Offset = 0
    ):
        return await answer(lambda a: a.segment_customers(name, kind, limit, offset),
                            "rfm_members", "ml_members", "rfm_segments", "ml_segments")

    return app


DB_VARIABLE = "XSELL_SERVE_DB"  # the file, for the worker processes


def app_from_environment() -> FastAPI:
    """The app of one worker process (uvicorn's factory when --workers > 1)."""
    return create_app(Path(os.environ[DB_VARIABLE]))


def serve(db_path: Path, host: str, port: int, *, workers: int = 1) -> None:
    """Run the API with uvicorn until interrupted; with workers > 1, in that many
    processes, each following the published file with its own lookups in memory."""
    import uvicorn

    options = {"host": host, "port": port, "log_level": "info", "access_log": False}
    if workers == 1:
        uvicorn.run(create_app(db_path), **options)
        return
    Warehouse(db_path).close()  # a missing or unreadable file fails here, once
    os.environ[DB_VARIABLE] = str(Path(db_path).resolve())
    uvicorn.run("xsell.serve.app:app_from_environment", factory=True, workers=workers,
                **options)
