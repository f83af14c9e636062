"""`repowire dashboard`: the Jobs view in a browser, a thin face over the library.

A Starlette app serving a JSON API and static files (no build step). Reads are plain GETs;
actions are POSTs that carry the page's per-server token and a same-origin Origin header.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from repowire.api import project as api
from repowire.errors import JobNotFound, RepowireError, ValidationError

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


def _detail(project: api.Project, request: Request) -> dict[str, Any]:
    """A job with its result and log tail, or a template's view."""
    data = project.show(request.path_params["id"])
    if data.get("kind") != "template":
        data["result"] = project.result(data["id"])["result"]
        data["log"] = _log(project, data["id"], -LOG_CHUNK)
    return data


def _log_from(project: api.Project, request: Request) -> dict[str, Any]:
    try:
        offset = int(request.query_params.get("offset") or 0)
    except ValueError:
        raise ValidationError("offset must be a whole number of bytes") from None
    return _log(project, request.path_params["id"], offset)


def _version(project: api.Project, runners: list[dict[str, Any]] | None = None) -> str:
    """Changes when a record, a template or the set of live runners does."""
    alive = project.runners() if runners is None else runners
    return f"{project.version()}:" + ",".join(f"{r['host']}-{r['pid']}" for r in alive)


def _state(project: api.Project, request: Request) -> dict[str, Any]:
    runners = project.runners()
    # The fingerprint is taken before the listing is read: a record that changes in between
    # leaves the page a fingerprint older than what it shows, so its next poll reads again.
    # (Taken after, it could name the newer files beside the older listing, and the page
    # would never ask again: the dashboard tests' rare stale page.)
    version = _version(project, runners)
    unread = [run["id"] for run in project.inbox()]
    return {**project.listing(), "runners": runners, "version": version, "inbox": unread}


def _log(project: api.Project, job_id: str, offset: int) -> dict[str, Any]:
    """Log text from offset (negative: that many bytes from the end), and where it stopped."""
    data, end = project.log(job_id, offset, LOG_CHUNK)
    return {"offset": end, "text": data.decode("utf-8", errors="replace")}


def _routes(project: api.Project, guard: Guard, page: str) -> list[BaseRoute]:
    def read(handler: Callable[[Request], Any]) -> Callable[[Request], Awaitable[Response]]:
        return _endpoint(guard.read_refusal, handler, 400)

    def act(action: Callable[[str], Any]) -> Callable[[Request], Awaitable[Response]]:
        def handler(request: Request) -> Any:
            item = action(request.path_params["id"])
            return project.show(api.name_of(item))

        return _endpoint(guard.write_refusal, handler, 409)

    def mark_read(job_id: str) -> Any:
        project.mark_read([job_id])
        return project.job(job_id)  # the record, as every other action answers

    post = ["POST"]
    return [
        Route("/", partial(_index, guard, page)),
        Route("/api/version", read(lambda r: {"version": _version(project)})),
        Route("/api/state", read(partial(_state, project))),
        Route("/api/jobs", read(lambda r: {"jobs": project.listing()["jobs"]})),
        Route("/api/templates", read(lambda r: {"templates": project.listing()["templates"]})),
        Route("/api/jobs/{id}", read(partial(_detail, project))),
        Route("/api/jobs/{id}/log", read(partial(_log_from, project))),
        Route("/api/jobs/{id}/cancel", act(project.cancel), methods=post),
        Route("/api/jobs/{id}/retry", act(project.retry), methods=post),
        Route("/api/jobs/{id}/read", act(mark_read), methods=post),
        Route("/api/templates/{id}/run", act(project.run_template), methods=post),
        Route("/api/templates/{id}/pause", act(project.pause), methods=post),
        Route("/api/templates/{id}/resume", act(project.resume), methods=post),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]


async def _index(guard: Guard, page: str, request: Request) -> Response:
    refused = guard.read_refusal(request)
    if refused is not None:
        return refused
    response = HTMLResponse(
        page.replace("{{TOKEN}}", guard.token), headers={"Cache-Control": "no-store"}
    )
    if guard.require_token:
        response.set_cookie("repowire_token", guard.token, httponly=True, samesite="strict")
    return response


def create_app(
    project: api.Project, token: str | None = None, host: str = "127.0.0.1"
) -> Starlette:
    """The dashboard for one root; a given token is required everywhere, else one is made."""
    guard = Guard(
        token or secrets.token_urlsafe(24), require_token=token is not None, bound_host=host
    )
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    return Starlette(routes=_routes(project, guard, page))


def _check_free(host: str, port: int) -> None:
    """Refuse, in one sentence, an address something else already listens on."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        raise RepowireError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port"
        ) from None


def serve(
    project: api.Project, host: str, port: int, token: str | None, open_browser: bool
) -> None:
    """Run the dashboard until Ctrl-C."""
    import uvicorn

    _check_free(host, port)
    app = create_app(project, token, host)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
    if token:
        url += f"?token={token}"
    print(f"repowire dashboard on {url} (Ctrl-C stops it)", flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    uvicorn.run(app, host=host, port=port, log_level="warning")
