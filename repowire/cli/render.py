"""Human output: aligned tables, relative times, and record views. JSON is printed elsewhere."""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any

import click

from repowire import clock
from repowire.money import format_money
from repowire.times import format_duration, parse_time

__all__ = ["ago", "safe", "table", "print_json", "print_job", "print_template", "print_listing"]

NO_RUNNER = "no runner is serving this root; start one with 'repowire runner'"
STATE_COLOURS = {
    "queued": "blue",
    "running": "yellow",
    "succeeded": "green",
    "failed": "red",
    "canceled": "magenta",
    "invalid": "red",
    "enabled": "green",
    "paused": "magenta",
}


SHOW_UTC = False  # --utc: human output in UTC instead of the local time zone
NEAR = 3 * 86400  # further away than this, a time is shown as a date, not "in 1132d"


def when(value: Any) -> str:
    """A time (or its ISO text) as people read it: local time by default, UTC with --utc."""
    if not value:
        return "-"
    moment = parse_time(value)
    if SHOW_UTC:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S%z")


def ago(value: Any, now: datetime | None = None) -> str:
    """'3m ago' or 'in 2h' for a time (or its ISO text); a date when it is days away."""
    if not value:
        return "-"
    moment = parse_time(value)
    delta = ((now or clock.now()) - moment).total_seconds()
    if abs(delta) < 1:
        return "now"
    if abs(delta) > NEAR:
        return when(value)[:16].replace("T", " ")
    text = format_duration(abs(int(delta)))
    text = text if len(text) <= 3 else _coarse(abs(int(delta)))
    return f"{text} ago" if delta > 0 else f"in {text}"


def _coarse(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# C0 controls but newline and tab, DEL, C1 controls, and the bidirectional overrides and
# isolates: printed raw, a job's output or a hand-written name could clear the screen, set the
# clipboard (OSC 52) or reorder what a person reads.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(value: Any) -> Any:
    """The value with every control character and bidi override in its text shown escaped,
    for human output (JSON output stays exact)."""
    if isinstance(value, str):
        return _UNSAFE.sub(_escape, value)
    if isinstance(value, list):
        return [safe(v) for v in value]
    if isinstance(value, dict):
        return {safe(k): safe(v) for k, v in value.items()}
    return value


def _state(text: str, state: str | None = None) -> str:
    """The text in its state's colour (looked up by the bare state, not the padded cell)."""
    if os.environ.get("NO_COLOR"):
        return text
    return click.style(text, fg=STATE_COLOURS.get((state or text).strip()))


def table(headers: list[str], rows: list[list[str]], state_column: int | None = None) -> str:
    """Columns padded to their widest cell; the state column coloured on a terminal."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        cells = []
        for i, (cell, width) in enumerate(zip(row, widths, strict=True)):
            padded = str(cell).ljust(width)
            cells.append(_state(padded, str(cell)) if i == state_column else padded)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def print_json(data: Any) -> None:
    import json  # imported here: most commands print no JSON

    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _short(text: Any, width: int = 50) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def print_listing(
    templates: list[dict[str, Any]], jobs: list[dict[str, Any]], filtered: bool = False
) -> None:
    templates, jobs = safe(templates), safe(jobs)
    if not templates and not jobs and filtered:
        click.echo("Nothing matches these filters (repowire jobs list, without them, lists all).")
        return
    if not templates and not jobs:
        click.echo(
            "No jobs or templates yet. Create one with: repowire jobs create NAME --command C"
        )
        return
    if templates:
        rows = [
            [t["id"], t.get("state", ""), t.get("cron", "-"), _next(t), _last(t)] for t in templates
        ]
        for row, template in zip(rows, templates, strict=True):
            if template.get("state") == "invalid":  # the problem where the runs would be
                row[4] = _short(template.get("error"), 60)
        click.echo(_bold("TEMPLATES"))
        click.echo(table(["NAME", "STATE", "SCHEDULE", "NEXT", "LAST RUN"], rows, state_column=1))
    if templates and jobs:
        click.echo()
    if jobs:
        click.echo(_bold("JOBS"))
        click.echo(_jobs_table(jobs))


def _jobs_table(jobs: list[dict[str, Any]]) -> str:
    """ID, state, name, when it started, how long it ran, when it is due (when any is), and
    the summary (or error), the summary fitted to the terminal's width."""
    import shutil  # imported here: most commands print no table

    due = any(j.get("due_at") or j.get("retry_at") for j in jobs if j["state"] == "queued")
    cost = any("cost_usd" in (j.get("usage") or {}) for j in jobs)
    rows = []
    for j in jobs:
        row = [j["id"], j["state"], " ".join(str(j.get("name", j["id"])).split())]
        row += [ago(j.get("started_at")), duration(j.get("started_at"), j.get("finished_at"))]
        if due:
            row.append(ago(j.get("retry_at") or j.get("due_at")) if j["state"] == "queued" else "")
        if cost:
            row.append(money((j.get("usage") or {}).get("cost_usd")))
        failed = j["state"] in ("failed", "invalid")
        waits = f"waiting for {', '.join(j['waiting_for'])}" if j.get("waiting_for") else ""
        row.append(j.get("error") if failed else waits or j.get("result_summary") or "")
        rows.append(row)
    headers = ["ID", "STATE", "NAME", "STARTED", "DURATION", *(["DUE"] if due else [])]
    headers += [*(["COST"] if cost else []), "SUMMARY"]
    name_width, summary_width = _fitted(headers, rows, shutil.get_terminal_size((130, 24)).columns)
    for row in rows:
        row[2], row[-1] = _short(row[2], name_width), _short(row[-1], summary_width)
    return table(headers, rows, state_column=1)


def _fitted(headers: list[str], rows: list[list[str]], columns: int) -> tuple[int, int]:
    """The widths of NAME (column 2) and SUMMARY (the last) that fit the line in `columns`:
    the other columns keep theirs; NAME keeps up to 30 while SUMMARY has 20, else the two
    share what is left, a third to NAME (at least 8, and 10 for SUMMARY)."""

    def widest(i: int) -> int:
        return max(len(str(r[i])) for r in [headers, *rows])

    fixed = sum(widest(i) + 2 for i in range(len(headers) - 1) if i != 2) + 2
    room = columns - 1 - fixed  # what NAME and SUMMARY share
    name = min(widest(2), 30)
    if room - name < 20:
        name = min(name, max(8, room // 3))
    return name, max(10, room - name)


def money(amount: Any) -> str:
    """$1.25, $0.0042; empty when there is no amount."""
    return format_money(amount) if isinstance(amount, (int, float)) else ""


def duration(started: Any, finished: Any) -> str:
    """How long a job ran (or has run so far): 45s, 10m, 1h30m; '-' before it started."""
    if not started:
        return "-"
    end = parse_time(finished) if finished else clock.now()
    return format_duration(max(0, int((end - parse_time(started)).total_seconds())))


def _bold(text: str) -> str:
    return text if os.environ.get("NO_COLOR") else click.style(text, bold=True)


def _next(template: dict[str, Any]) -> str:
    fires = template.get("next_fires") or []
    return ago(fires[0]["utc"]) if fires else "-"


def _last(template: dict[str, Any]) -> str:
    runs = template.get("recent_runs") or []
    if not runs:
        return "-"
    return f"{runs[0]['id']} ({runs[0]['state']}, {ago(runs[0].get('updated_at'))})"


def _field_lines(data: dict[str, Any], skip: set[str]) -> None:
    width = max((len(k) for k in data if k not in skip), default=0)
    for key, value in data.items():
        if key in skip or value in (None, [], {}):
            continue
        if key == "worktree" and isinstance(value, dict):
            value = _worktree(data.get("id"), value)
        elif key == "usage" and isinstance(value, dict):
            value = _usage_words(value)
        elif key == "notified" and isinstance(value, list):
            value = "\n".join(_try_words(entry) for entry in value if isinstance(entry, dict))
        elif isinstance(value, dict):  # the executor handle, env, slurm options
            value = "  ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            value = "\n".join("  ".join(f"{k} {v}" for k, v in v.items()) for v in value)
        elif isinstance(value, list):  # after, labels, then: names
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        if key in ("state",):
            value = _state(str(value))
        elif key.endswith("_at") or key in ("scheduled_for", "last_fire"):
            value = f"{when(value)} ({ago(value)})"
        lines = str(value).splitlines() or [""]
        click.echo(f"{key.ljust(width)}  {lines[0]}")
        for line in lines[1:]:
            click.echo(f"{'':{width}}  {line}")


def _usage_words(usage: dict[str, Any]) -> str:
    """What a run used, in words: its tokens, its cost (estimated or reported), its model."""
    parts = [
        f"{key.removesuffix('_tokens').replace('_', ' ')} {value:,} tokens"
        for key, value in usage.items()
        if key.endswith("_tokens") and isinstance(value, int)
    ]
    if isinstance(usage.get("cost_usd"), (int, float)):
        estimated = " (estimated from prices)" if usage.get("cost_estimated") else ""
        parts.append(f"cost {money(usage['cost_usd'])}{estimated}")
    if usage.get("model"):
        parts.append(f"model {usage['model']}")
    return ", ".join(parts)


def _try_words(entry: dict[str, Any]) -> str:
    """One notification try: its target, how it went, when, and how many tries so far."""
    went = "ok" if entry.get("ok") else "failed"
    tries = entry.get("tries", 1)
    return (
        f"{entry.get('target')}: {went}, {entry.get('status')} "
        f"(attempt {entry.get('attempt')}, {when(entry.get('at'))}, "
        f"{tries} tr{'y' if tries == 1 else 'ies'})"
    )


def _worktree(job_id: object, tree: dict[str, Any]) -> str:
    """branch, base, head and files changed of a worktree run, in words."""
    base = str(tree.get("base", ""))[:12]
    head = tree.get("head")
    if head is None:
        what = f"from {base}; working in {tree.get('path')}"
    elif head:
        count = tree.get("files_changed", 0)
        what = f"{base}..{str(head)[:12]}, {count} file{'s' if count != 1 else ''} changed"
        what += f" (repowire jobs diff {job_id})"
    else:
        what = f"from {base}; no changes"
    return f"{tree.get('branch')}  {what}"


def print_job(data: dict[str, Any]) -> None:
    """A job record: its keys, then its notes as a timeline."""
    data = safe(data)
    _field_lines(data, skip={"notes"})
    notes = data.get("notes") or []
    if notes:
        click.echo("\nnotes:")
        for note in notes:
            state = f" [{note['state']}]" if note.get("state") else ""
            click.echo(f"  {when(note['at'])}{state} {note['text']}")


def print_template(data: dict[str, Any]) -> None:
    """A template: its definition, next fire times, recent runs and skipped slots."""
    data = safe(data)
    _field_lines(data, skip={"next_fires", "recent_runs", "skipped", "kind", "enabled", "usage"})
    print_spend(data.get("usage") or {})
    if data.get("next_fires"):
        click.echo(f"\nnext fires ({data.get('timezone')} / UTC):")
        for fire in data["next_fires"]:
            click.echo(f"  {fire['local']}  {fire['utc']}  ({ago(fire['utc'])})")
    elif data.get("state") == "paused":
        click.echo("\npaused: no fires until enabled (repowire jobs run NAME fires it now)")
    runs = data.get("recent_runs") or []
    click.echo("\nrecent runs:" if runs else "\nrecent runs: none yet")
    for run in runs:
        summary = _short(run.get("result_summary"))
        click.echo(f"  {run['id']}  {_state(run['state'])}  {summary}".rstrip())
    skipped = data.get("skipped") or []
    if skipped:
        click.echo("\nskipped slots:")
        for slot in skipped[-10:]:
            click.echo(f"  {_skipped_slots(slot)}  {slot.get('reason')}")


def _skipped_slots(entry: dict[str, Any]) -> str:
    """A skipped slot, or a run of them: the first and last slot and how many."""
    count = int(entry.get("count") or 1)
    if count == 1 or not entry.get("until"):
        return when(entry.get("slot"))
    return f"{when(entry.get('slot'))} to {when(entry.get('until'))} ({count} slots)"


def print_backends(rows: list[dict[str, Any]]) -> None:
    """Each backend: the argv it runs, its resume form, and whether its program is here."""
    for row in rows:
        found = "on PATH" if row["installed"] else "NOT on PATH"
        click.echo(
            click.style(row["name"], bold=True) + f"  ({row['source']}; {row['program']} {found})"
        )
        click.echo(f"  run:     {' '.join(row['command'])}")
        if row.get("resume_command"):
            click.echo(f"  resume:  {' '.join(row['resume_command'])}")
        if row.get("session_id"):
            click.echo(f"  session: {row['session_id']}")
        if row.get("final_message_key"):
            click.echo(f"  result:  the {row['final_message_key']!r} key of its JSON output")


def print_overview(data: dict[str, Any]) -> None:
    """`repowire status`: the root, its runners, counts, running jobs, next fires, problems."""
    data = safe(data)
    rows = [
        ("root", data["root"]),
        ("trusted", "yes" if data["trusted"] else "no (repowire trust)"),
    ]
    for runner in data["runners"] or [None]:
        if runner is None:
            rows.append(("runner", f"none: {NO_RUNNER}"))
        else:
            since = f"{when(runner['started_at'])} ({ago(runner['started_at'])})"
            rows.append(("runner", f"pid {runner['pid']} on {runner['host']}, since {since}"))
    counts = ", ".join(f"{n} {s}" for s, n in data["counts"].items() if n)
    rows.append(("jobs", counts or "none yet"))
    for job in data["running"]:
        rows.append(
            ("running", f"{job['id']} ({_short(job['name'], 30)}), {ago(job['started_at'])}")
        )
    for fire in data["next_fires"]:
        rows.append(("next", f"{fire['template']} {ago(fire['at'])} ({when(fire['at'])})"))
    for bad in data["invalid"]:
        rows.append(("invalid", f"{bad['path']}: {_short(bad['error'], 80)}"))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")


def _line(totals: dict[str, Any]) -> str:
    runs = totals.get("runs", 0)
    counted = f"{runs} run{'s' if runs != 1 else ''}, {totals.get('tokens', 0):,} tokens"
    return f"{money(totals.get('cost_usd', 0.0))}  ({counted})"


def print_spend(spend: dict[str, Any]) -> None:
    """A template's spend today, in the last 7 and 30 days, and against its budget."""
    if not spend:
        return
    click.echo("\nspend:")
    for key, label in (
        ("today", "today"),
        ("last_7_days", "last 7 days"),
        ("last_30_days", "last 30 days"),
    ):
        click.echo(f"  {label:<13} {_line(spend.get(key) or {})}")
    budget = spend.get("budget")
    if budget:
        limits = [money(budget["cost_usd"])] if "cost_usd" in budget else []
        limits += [f"{budget['tokens']:,} tokens"] if "tokens" in budget else []
        start, end = budget.get("period") or ["", ""]
        click.echo(
            f"  {'budget':<13} {' and '.join(limits)} per {budget['per']}; this {budget['per']}: "
            f"{_line(budget.get('spent') or {})}, until {when(end)}"
        )
