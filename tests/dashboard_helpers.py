"""A real `repowire dashboard` server on a free loopback port, for the tests that need one."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from conftest import wait_for


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Dashboard:
    """The dashboard of root as a subprocess, with an HTTP client and its token."""

    def __init__(self, root: Path, *args: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "repowire", "dashboard", "--port", str(self.port), *args],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = httpx.Client(base_url=self.url, timeout=10)
        wait_for(self._up, what="dashboard to answer")
        page = self.client.get("/", params={"token": args[-1]} if "--token" in args else None)
        found = re.search(r'name="repowire-token" content="([^"]+)"', page.text)
        self.token = found.group(1) if found else ""

    def _up(self) -> bool:
        try:
            return self.client.get("/api/version").status_code in (200, 401)
        except httpx.TransportError:
            return False

    def post(self, path: str, **headers: str) -> httpx.Response:
        return self.client.post(path, headers={"X-Repowire-Token": self.token, **headers})

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)
