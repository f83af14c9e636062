"""`repowire dashboard`: the Jobs view in a browser, a thin face over the library.

A Starlette app serving a JSON API and static files (no build step). Reads are plain GETs;
actions are POSTs that carry the page's per-server token and a same-origin Origin header.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Awaitable, Callable
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import api
from ..errors import JobNotFound, RepowireError
from ..files import open_file
from ..store import Store

__all__ = ["create_app", "serve", "is_loopback"]

LOG_CHUNK = 64 * 1024
STATIC = Path(str(resources.files(__package__) / "static"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Guard:
    """Who may read and act: the Host header (against DNS rebinding), the token, the Origin."""

    def __init__(self, token: str, require_token: bool, bound_host: str) -> None:
        self.token = token
        self.require_token = require_token
        self.bound_host = bound_host

    def _host_ok(self, request: Request) -> bool:
        if self.require_token:
            return True  # served beyond loopback: the token is the gate
        host = request.headers.get("host", "").rsplit(":", 1)[0]
        return is_loopback(host) or host == self.bound_host

    def _token_of(self, request: Request) -> str:
        return (
            request.headers.get("x-repowire-token")
            or request.query_params.get("token")
            or request.cookies.get("repowire_token")
            or ""
        )

    def _token_ok(self, request: Request) -> bool:
        return hmac.compare_digest(self._token_of(request), self.token)

    def read_refusal(self, request: Request) -> Response | None:
        if not self._host_ok(request):
            return _error(403, "this dashboard answers only on its own address")
        if self.require_token and not self._token_ok(request):
            return _error(401, "a token is needed: open the address with ?token=...")
        return None

    def write_refusal(self, request: Request) -> Response | None:
        refused = self.read_refusal(request)
        if refused is not None:
            return refused
        origin = request.headers.get("origin")
        own = {f"{request.url.scheme}://{request.headers.get('host', '')}"}
        if origin is not None and origin not in own:
            return _error(403, f"cross-site request from {origin} refused")
        if not hmac.compare_digest(request.headers.get("x-repowire-token", ""), self.token):
            return _error(403, "missing or wrong X-Repowire-Token header")
        return None


def _error(status: int, sentence: str) -> JSONResponse:
    return JSONResponse({"error": sentence}, status_code=status)


def _version(store: Store) -> str:
    """A cheap fingerprint of every record and template: names, sizes and change times."""
    digest = hashlib.blake2b(digest_size=12)
    for folder in (store.jobs_dir, store.agents_dir):
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for entry in entries:
            paths = [entry.path]
            if entry.is_dir():
                paths = [os.path.join(entry.path, n) for n in ("job.yaml", "state.yaml")]
            elif not entry.name.endswith(".yaml"):
                continue
            for path in paths:
                try:
                    info = os.stat(path)
                except FileNotFoundError:
                    continue
                digest.update(f"{path}:{info.st_mtime_ns}:{info.st_size};".encode())
    return digest.hexdigest()


def _endpoint(
    refusal: Callable[[Request], Response | None],
    handler: Callable[[Request], Any],
    refused_status: int,
) -> Callable[[Request], Awaitable[Response]]:
    """A JSON endpoint: the guard's check, the handler, and library errors as sentences."""

    async def endpoint(request: Request) -> Response:
        refused = refusal(request)
        if refused is not None:
            return refused
        try:
            return JSONResponse(handler(request))
        except JobNotFound as exc:
            return _error(404, str(exc))
        except RepowireError as exc:  # for an action: the state changed meanwhile
            return _error(refused_status, str(exc))

    return endpoint


def _detail(root: Path, store: Store, request: Request) -> dict[str, Any]:
    """A job with its result and log tail, or a template's view."""
    data = api.as_dict(root, api.find(root, request.path_params["id"]))
    if data.get("kind") != "template":
        data["result"] = api.get_result(root, data["id"])["result"]
        data["log"] = _log(store, data["id"], -LOG_CHUNK)
    return data


def _log_from(root: Path, store: Store, request: Request) -> dict[str, Any]:
    api.get_job(root, request.path_params["id"])
    return _log(store, request.path_params["id"], int(request.query_params.get("offset") or 0))


def create_app(root: Path, token: str | None = None, host: str = "127.0.0.1") -> Starlette:
    """The dashboard for one root; a given token is required everywhere, else one is made."""
    guard = Guard(
        token or secrets.token_urlsafe(24), require_token=token is not None, bound_host=host
    )
    store = Store(root)
    page = (STATIC / "index.html").read_text(encoding="utf-8")

    def read(handler: Callable[[Request], Any]) -> Callable[[Request], Awaitable[Response]]:
        return _endpoint(guard.read_refusal, handler, 400)

    def act(action: Callable[[str], Any]) -> Callable[[Request], Awaitable[Response]]:
        def handler(request: Request) -> Any:
            return api.as_dict(root, action(request.path_params["id"]))

        return _endpoint(guard.write_refusal, handler, 409)

    async def index(request: Request) -> Response:
        refused = guard.read_refusal(request)
        if refused is not None:
            return refused
        response = HTMLResponse(
            page.replace("{{TOKEN}}", guard.token), headers={"Cache-Control": "no-store"}
        )
        if guard.require_token:
            response.set_cookie("repowire_token", guard.token, httponly=True, samesite="strict")
        return response

    post = ["POST"]
    routes = [
        Route("/", index),
        Route("/api/version", read(lambda r: {"version": _version(store)})),
        Route("/api/state", read(lambda r: {**api.listing_dict(root), "version": _version(store)})),
        Route("/api/jobs", read(lambda r: {"jobs": api.listing_dict(root)["jobs"]})),
        Route("/api/templates", read(lambda r: {"templates": api.listing_dict(root)["templates"]})),
        Route("/api/jobs/{id}", read(partial(_detail, root, store))),
        Route("/api/jobs/{id}/log", read(partial(_log_from, root, store))),
        Route("/api/jobs/{id}/cancel", act(lambda i: api.cancel(root, i)), methods=post),
        Route("/api/jobs/{id}/retry", act(lambda i: api.retry(root, i)), methods=post),
        Route("/api/templates/{id}/run", act(lambda i: api.run_template(root, i)), methods=post),
        Route("/api/templates/{id}/pause", act(lambda i: _pause(root, i)), methods=post),
        Route(
            "/api/templates/{id}/resume", act(lambda i: api.resume_template(root, i)), methods=post
        ),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    return Starlette(routes=routes)


def _pause(root: Path, name: str) -> Any:
    from ..templates import set_enabled

    return set_enabled(Store(root), name, False)


def _log(store: Store, job_id: str, offset: int) -> dict[str, Any]:
    """Log text from offset (negative: that many bytes from the end), and where it stopped."""
    path = store.sibling(job_id, ".log")
    try:
        with open_file(path) as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(0, size + offset) if offset < 0 else min(offset, size)
            handle.seek(start)
            data = handle.read(LOG_CHUNK)
    except FileNotFoundError:
        return {"offset": 0, "text": ""}
    return {"offset": start + len(data), "text": data.decode("utf-8", errors="replace")}


def serve(root: Path, host: str, port: int, token: str | None, open_browser: bool) -> None:
    """Run the dashboard until Ctrl-C."""
    import uvicorn

    app = create_app(root, token, host)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
    if token:
        url += f"?token={token}"
    print(f"repowire dashboard on {url} (Ctrl-C stops it)", flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    uvicorn.run(app, host=host, port=port, log_level="warning")
