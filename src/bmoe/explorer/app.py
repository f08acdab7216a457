"""The explorer's ASGI app (Starlette): routes to pages, and the answers for what cannot be shown.

Owns the URL space and its status codes, read-only (GET and HEAD only):

    /                      the chain's head, audit status, latest blocks
    /blocks?page=N         every block, newest first
    /block/{height|hash}   one block: header, seal, transactions
    /tasks, /task/{id}     tasks; one task's activation, decisions, groups, evidence, loss
    /edges, /edge/{ref}    edges' records and accounts (ref: address, edge-N or N)
    /experts, /expert/{n}  CID history, activation ratio per round, acceptance, each edge's answers
    /layers                a language model's routing: tokens to each expert of each layer, per round
    /generations           a verified server's responses (receipts.jsonl) and the generation sessions on the chain
    /chunk/{gen}/{n}       one sealed generation chunk: its calls, each token's experts per layer, records against
    /run                   settings, what the genesis puts in force, curves, the audit's report (a language
                           model's: its manifest, loss and validation curves, lm.json)
    /search?q=...          to the page of a height, hash, task id, edge or CID (303), or 404
    /object/{cid}          where the ledger names an object; /object/{cid}/bytes its verified bytes
    /cluster               (--cluster) every process's health and each validator's head, reloading

An unknown name is a 404 page; a chain that fails its audit is served as the audit's finding (422)
on every ledger page; a store that cannot give an object's bytes is a 502 page. Pages render in
Starlette's thread pool: a build (audit and replay) never blocks the event loop.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from bmoe.explorer.cluster_health import cluster_health
from bmoe.explorer.html import Html
from bmoe.explorer.pages import chain, chunk, edges, experts, generations, layers, lm_run, objects, run, search, tasks
from bmoe.explorer.pages.cluster import REFRESH_S, cluster_page
from bmoe.explorer.pages.errors import audit_failed, not_found, unavailable
from bmoe.explorer.pages.view import NotFound, View
from bmoe.explorer.snapshot import Explorer
from bmoe.storage import StorageError

AUDIT_FAILED = 422  # the chain is not a valid ledger: its finding is the answer
Render = Callable[[View, Request], Html | Response]


def make_app(explorer: Explorer, is_cluster: bool) -> Starlette:
    label = explorer.source.label

    def ledger_page(render: Render) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            served = explorer.current()
            if served.index is None or served.report is None:
                return HTMLResponse(audit_failed(label, served.finding or "unknown", is_cluster), AUDIT_FAILED)
            view = View(served.index, served.report, explorer.source, is_cluster)
            try:
                answer = render(view, request)
            except NotFound as err:
                return HTMLResponse(not_found(label, str(err), is_cluster, request.query_params.get("q", "")), 404)
            return answer if isinstance(answer, Response) else HTMLResponse(answer)
        return endpoint

    def param(request: Request, name: str) -> str:
        return str(request.path_params[name])

    def found(view: View, request: Request) -> Response:
        return RedirectResponse(search.resolve(view, request.query_params.get("q", "")), status_code=303)

    def object_page(view: View, request: Request) -> Html:
        with explorer.source.objects() as store:
            return objects.object_page(view, param(request, "cid"), store)

    def chunk_page(view: View, request: Request) -> Html:
        with explorer.source.objects() as store:
            return chunk.chunk(view, param(request, "generation"), param(request, "chunk"), store)

    def object_bytes(view: View, request: Request) -> Response:
        cid = param(request, "cid")
        try:
            with explorer.source.objects() as store:
                data = objects.object_bytes(view, cid, store)
        except StorageError as err:
            return HTMLResponse(unavailable(label, f"the store cannot give {cid}: {err}", is_cluster), 502)
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{cid}"'})

    def cluster(request: Request) -> Response:
        if not is_cluster:
            return HTMLResponse(not_found(label, "this explorer serves a run directory, not a cluster "
                                                 "(bmoe explorer --cluster DIR)", is_cluster), 404)
        refresh = request.query_params.get("refresh", str(REFRESH_S))
        processes, heads = cluster_health(explorer.source.cluster)  # type: ignore[arg-type]
        return HTMLResponse(cluster_page(label, processes, heads, int(refresh) if refresh.isdecimal() else REFRESH_S))

    pages: dict[str, Render] = {
        "/": lambda view, request: chain.home(view),
        "/blocks": lambda view, request: chain.blocks(view, chain.page_number(request.query_params.get("page"))),
        "/block/{ref}": lambda view, request: chain.block(view, param(request, "ref")),
        "/tasks": lambda view, request: tasks.tasks(view),
        "/task/{task_id}": lambda view, request: tasks.task(view, param(request, "task_id")),
        "/edges": lambda view, request: edges.edges(view),
        "/edge/{ref}": lambda view, request: edges.edge(view, param(request, "ref")),
        "/experts": lambda view, request: experts.experts(view),
        "/expert/{ref}": lambda view, request: experts.expert(view, param(request, "ref")),
        "/layers": lambda view, request: layers.layers(view),
        "/generations": lambda view, request: generations.generations(view),
        "/chunk/{generation}/{chunk}": chunk_page,
        "/run": lambda view, request: lm_run.run(view) if view.lm is not None else run.run(view),
        "/search": found,
        "/object/{cid}": object_page,
        "/object/{cid}/bytes": object_bytes,
    }
    routes = [Route(path, ledger_page(render), methods=["GET"]) for path, render in pages.items()]
    routes.append(Route("/cluster", cluster, methods=["GET"]))

    async def missing(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        title, message = {404: ("Not found", f"no page at {request.url.path}"),
                          405: ("Method not allowed", f"{request.method} is not allowed: the explorer only reads")
                          }.get(status, ("Error", "the explorer could not render this page"))
        return HTMLResponse(not_found(label, message, is_cluster, title=title), status)

    return Starlette(routes=routes, exception_handlers={HTTPException: missing, Exception: missing})
