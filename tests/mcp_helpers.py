"""Talk to a real `repowire mcp` subprocess through the official SDK's stdio client."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def run_session(
    root: Path, body: Callable[[ClientSession], Awaitable[Any]], env: dict[str, str] | None = None
) -> Any:
    """Start the server, initialise a session, run body(session), and shut everything down."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "repowire", "--root", str(root), "mcp"],
        env={"XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"], **(env or {})},
        cwd=str(root),
    )

    async def main() -> Any:
        with open(os.devnull, "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await body(session)

    return anyio.run(main)


def payload(result: Any) -> Any:
    """A tool result's structured content (or its text parsed as JSON)."""
    if result.structured_content is not None:
        data = result.structured_content
        return data.get("result", data) if set(data) == {"result"} else data
    return json.loads(result.content[0].text)


def error_text(result: Any) -> str:
    assert result.is_error, result
    return " ".join(getattr(c, "text", "") for c in result.content)
