"""`repowire mcp`: the job tools over stdio for coding agents, on the official MCP SDK.

Every tool calls the same library functions as the CLI, and a refused call is a tool error with
the sentence the CLI would print; the server keeps serving.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field
from pydantic import ValidationError as PydanticError

from repowire.api import project as api
from repowire.errors import RepowireError, shown
from repowire.record.states import TERMINAL_NAMES

__all__ = ["build_server", "serve"]

State = Literal["queued", "running", "succeeded", "failed", "canceled"]
F = TypeVar("F", bound=Callable[..., Any])

JobId = Annotated[
    str | None,
    Field(
        description="The job id (or template name). Inside a job's executor it defaults to "
        "that job, from REPOWIRE_JOB_ID."
    ),
]
Text = str | None


def _executor_job_id() -> str | None:
    """REPOWIRE_JOB_ID from this process or, since agent CLIs start MCP servers with a trimmed
    environment, from the nearest ancestor that has it (the executor the agent runs in)."""
    if os.environ.get("REPOWIRE_JOB_ID"):
        return os.environ["REPOWIRE_JOB_ID"]
    import psutil

    try:
        for parent in psutil.Process().parents():
            with contextlib.suppress(psutil.Error):
                value = parent.environ().get("REPOWIRE_JOB_ID")
                if value:
                    return str(value)
    except psutil.Error:
        pass
    return None


def _own_job(job_id: str | None) -> str:
    chosen = job_id or _executor_job_id()
    if not chosen:
        raise ToolError("job_id is required (no REPOWIRE_JOB_ID in this server's environment)")
    return chosen


def _refusals(func: F) -> F:
    """A library error becomes a tool error carrying the same sentence the CLI prints."""

    @wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ToolError:
            raise
        except RepowireError as exc:
            raise ToolError(str(exc)) from None
        except OSError as exc:
            raise ToolError(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None
        except Exception as exc:  # never an error with no reason: say what went wrong
            words = str(exc).strip().splitlines()
            raise ToolError(
                f"{func.__name__} failed: {words[0] if words else type(exc).__name__}"
            ) from None

    return call  # type: ignore[return-value]


TOOL_NAMES = (
    "job_create",
    "job_list",
    "job_status",
    "job_show",
    "job_update",
    "job_result",
    "job_cancel",
    "job_retry",
    "job_run",
    "job_logs",
    "job_wait",
    "job_resume",
)


Name = Annotated[str, Field(description="Display name; with cron, also the template's folder.")]
Command = Annotated[Text, Field(description="A shell command (run by /bin/sh -c).")]
Backend = Annotated[
    Text, Field(description="shell, codex, claude, gemini, opencode, or one from config.yaml.")
]
WorkerPath = Annotated[
    Text, Field(description="Worker folder and working directory, relative to the root.")
]
Prompt = Annotated[Text, Field(description="The ask for an agent backend.")]
PromptFile = Annotated[Text, Field(description="A file holding the ask, relative to path.")]
Cron = Annotated[
    Text, Field(description="Make a recurring template: 5 cron fields, 6 with seconds, or @daily.")
]
Zone = Annotated[Text, Field(description="IANA zone the cron expression is read in.")]
Continuity = Annotated[
    Literal["fresh", "resume"] | None,
    Field(description="resume: continue the previous run's agent session."),
]
Timeout = Annotated[Text, Field(description="Wall-clock limit: 30s, 10m, 2h, 1d.")]
Retries = Annotated[int | None, Field(ge=0, description="Automatic retries after a failure.")]
DueAt = Annotated[Text, Field(description="Not before: ISO-8601 time, or a delay such as 10m.")]
Env = Annotated[dict[str, str] | None, Field(description="Extra environment variables.")]
After = Annotated[list[str] | None, Field(description="Start only when these jobs have succeeded.")]
Priority = Annotated[int | None, Field(ge=0, description="Higher starts first (default 0).")]
Labels = Annotated[list[str] | None, Field(description="Labels, to filter jobs by.")]
Workspace = Annotated[
    Literal["inplace", "worktree"] | None,
    Field(description="worktree: each run works in a git worktree, on a branch of its own."),
]
Base = Annotated[Text, Field(description="The commit a worktree run starts from (default HEAD).")]
NewState = Annotated[State | None, Field(description="The new state.")]
Note = Annotated[Text, Field(description="A progress note for the timeline.")]
Summary = Annotated[Text, Field(description="A short result.")]
SessionId = Annotated[Text, Field(description="The agent's runtime session id, for resume.")]
Quiet = Annotated[
    bool | None,
    Field(description="Nothing to report: keep the run out of the inbox and default notices."),
]
Reason = Annotated[Text, Field(description="Why; recorded as the job's error.")]


class JobTools:
    """The job tools of one root; each method is one MCP tool, its docstring the description."""

    def __init__(self, project: api.Project) -> None:
        self.project = project

    @_refusals
    def job_create(
        self,
        name: Name,
        command: Command = None,
        backend: Backend = None,
        path: WorkerPath = None,
        prompt: Prompt = None,
        prompt_file: PromptFile = None,
        cron: Cron = None,
        timezone: Zone = None,
        continuity: Continuity = None,
        timeout: Timeout = None,
        retries: Retries = None,
        due_at: DueAt = None,
        env: Env = None,
        after: After = None,
        priority: Priority = None,
        labels: Labels = None,
        workspace: Workspace = None,
        base: Base = None,
    ) -> dict[str, Any]:
        """Create a queued job, or with cron a recurring template; returns the record."""
        options = {key: value for key, value in locals().items() if key != "self"}
        options["env"] = env or {}  # every argument is a definition key of the same name
        item = self.project.create(**options)
        return self.project.show(api.name_of(item))

    @_refusals
    def job_list(
        self,
        state: Annotated[
            State | Literal["invalid", "enabled", "paused"] | None,
            Field(description="Only jobs and templates in this state."),
        ] = None,
        template: Annotated[Text, Field(description="Only this template and its runs.")] = None,
    ) -> dict[str, Any]:
        """Templates and jobs, {"templates": [...], "jobs": [...]}; broken files are invalid."""
        return self.project.listing(state=state, template=template)

    @_refusals
    def job_status(self, job_id: JobId = None) -> dict[str, Any]:
        """The state of a job (a template: enabled or paused)."""
        chosen = _own_job(job_id)
        return {"id": chosen, "state": self.project.status(chosen)}

    @_refusals
    def job_show(self, job_id: JobId = None) -> dict[str, Any]:
        """The whole record; for a template: its next fires, recent runs and skipped slots."""
        return self.project.show(_own_job(job_id))

    @_refusals
    def job_update(
        self,
        job_id: JobId = None,
        state: NewState = None,
        note: Note = None,
        result_summary: Summary = None,
        session_id: SessionId = None,
        quiet: Quiet = None,
    ) -> dict[str, Any]:
        """A locked transition and/or note, result summary, session id or quiet mark."""
        job = self.project.update(
            _own_job(job_id),
            state=state,
            note=note,
            result_summary=result_summary,
            session_id=session_id,
            quiet=quiet,
        )
        return self.project.show(job.id)

    @_refusals
    def job_result(self, job_id: JobId = None) -> dict[str, Any]:
        """The result summary and the result file's text."""
        return self.project.result(_own_job(job_id))

    @_refusals
    def job_cancel(self, job_id: JobId = None, reason: Reason = None) -> dict[str, Any]:
        """Cancel a queued or running job (its executor is released); a template name pauses it."""
        chosen = _own_job(job_id)
        self.project.cancel(chosen, reason)
        return self.project.show(chosen)

    @_refusals
    def job_retry(self, job_id: JobId = None) -> dict[str, Any]:
        """Put a failed or canceled job back in the queue."""
        job = self.project.retry(_own_job(job_id))
        return self.project.show(job.id)

    @_refusals
    def job_logs(
        self,
        job_id: JobId = None,
        offset: Annotated[
            int, Field(description="Where to start: a byte offset, or negative: from the end.")
        ] = -16384,
    ) -> dict[str, Any]:
        """The executor output of a job (at most 64 KiB from offset) and the offset after it."""
        data, end = self.project.log(_own_job(job_id), offset)
        return {"text": data.decode("utf-8", errors="replace"), "offset": end}

    @_refusals
    def job_wait(
        self,
        job_ids: Annotated[list[str], Field(description="The jobs to wait for.", min_length=1)],
        timeout: Annotated[
            float, Field(description="Seconds to wait at most (up to 300).", gt=0, le=300)
        ] = 60,
    ) -> dict[str, Any]:
        """Wait until every job is finished, or the timeout passes; returns each job's state
        and whether all are done."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            states = {job_id: self.project.status(job_id) for job_id in job_ids}
            done = all(s in TERMINAL_NAMES for s in states.values())
            if done or time.monotonic() >= deadline:
                return {"done": done, "states": states}
            time.sleep(0.2)

    @_refusals
    def job_resume(
        self, name: Annotated[str, Field(description="The paused template's name.")]
    ) -> dict[str, Any]:
        """Resume a paused recurring template (enabled: true); returns the template."""
        self.project.resume(name)
        return self.project.show(name)

    @_refusals
    def job_run(
        self, name: Annotated[str, Field(description="The template's name.")]
    ) -> dict[str, Any]:
        """Fire a recurring template now, even when paused; returns the new run."""
        return self.project.show(self.project.run_template(name).id)


# What each tool does to the root, for clients that run read-only tools without asking.
READ_ONLY = ToolAnnotations(read_only_hint=True)
CREATES = ToolAnnotations(read_only_hint=False, destructive_hint=False)
ENDS_WORK = ToolAnnotations(read_only_hint=False, destructive_hint=True)  # can cancel or fail a job
ANNOTATIONS = {
    "job_create": CREATES,
    "job_list": READ_ONLY,
    "job_status": READ_ONLY,
    "job_show": READ_ONLY,
    "job_update": ENDS_WORK,
    "job_result": READ_ONLY,
    "job_cancel": ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=True
    ),
    "job_retry": CREATES,
    "job_run": CREATES,
    "job_logs": READ_ONLY,
    "job_wait": READ_ONLY,
    "job_resume": CREATES,
}


class JobServer(MCPServer):
    """The SDK's server, with a mistyped argument answered in one sentence, as the CLI would."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, PydanticError) and exc.__cause__.errors():
                raise ToolError(_argument_sentence(name, exc.__cause__)) from None
            raise


def _argument_sentence(tool: str, error: PydanticError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "arguments"
    got = f" (got {shown(first['input'])})" if "input" in first else ""
    more = f"; {len(error.errors()) - 1} more" if len(error.errors()) > 1 else ""
    return f"{tool}: {where}: {first['msg']}{got}{more}"


def build_server(project: api.Project) -> MCPServer:
    """The MCP server for one root, with every job tool registered."""
    server = JobServer(
        "repowire",
        instructions=(
            "Durable jobs kept as YAML files in .repowire/. Create work with job_create, follow "
            "it with job_list/job_status/job_show, report progress and results on your own job "
            "with job_update (job_id defaults to your job inside an executor), and cancel or "
            "retry with job_cancel/job_retry. job_run fires a recurring template now."
        ),
    )
    tools = JobTools(project)
    for name in TOOL_NAMES:
        server.add_tool(getattr(tools, name), name=name, annotations=ANNOTATIONS[name])
    return server


def serve(project: api.Project) -> None:
    """Serve on stdio until the client goes away."""
    build_server(project).run("stdio")
