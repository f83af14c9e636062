"""`repowire mcp`: the job tools over stdio for coding agents, on the official MCP SDK."""
