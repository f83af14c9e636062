"""python -m bench [--quick] [--only 1,3] : run the benchmark suite, print Markdown, save JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from . import crash, workloads


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    system = f"{platform.system()} {platform.release()}"
    return f"{system}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    parser.add_argument("--only", default="1,2,3,4,5,6,7", help="workloads to run, e.g. 1,6")
    parser.add_argument("--out", default="bench/results", help="folder for the JSON results")
    args = parser.parse_args()
    quick = args.quick
    plan = {
        "1": lambda: workloads.dispatch_latency(30 if quick else 200),
        "2": lambda: workloads.throughput(100 if quick else 1000),
        "3": lambda: workloads.cron_precision(5 if quick else 30),
        "4": lambda: workloads.scale([1000] if quick else [1000, 10000, 100000]),
        "5": lambda: workloads.idle(1000 if quick else 10000, 10 if quick else 60),
        "6": lambda: workloads.cold_start(5 if quick else 20),
        "7": lambda: workloads.worktree_start(5 if quick else 20, 1000 if quick else 10000),
        "crash": lambda: crash.crash_loop(100 if quick else 1000, 20 if quick else 200),
    }
    results: dict[str, Any] = {
        "machine": _machine(),
        "date": time.strftime("%Y-%m-%d"),
        "quick": quick,
    }
    for key in args.only.split(","):
        print(f"running workload {key} ...", flush=True)
        os.sync()  # each starts with the disk idle, not writing back what the last one wrote
        results[key] = plan[key]()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(report(results))
    print(f"\nsaved {path}")


def _ms(figures: dict[str, float]) -> str:
    return f"p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms (n {figures['n']})"


def report(r: dict[str, Any]) -> str:
    """The results as a Markdown table, with each figure's goal."""
    rows = []
    if "1" in r:
        rows.append(
            (
                "1 dispatch latency (drop -> executor running)",
                _ms(r["1"]["latency_ms"]),
                "p50 <= 10 ms, p99 <= 20 ms",
            )
        )
    if "2" in r:
        t = r["2"]
        peers = []
        for peer in ("tsp", "nq"):
            value = t[peer]
            peers.append(
                f"{peer} {value['jobs_per_second']:.0f}/s"
                if isinstance(value, dict)
                else f"{peer}: {value}"
            )
        prequeued = t.get("repowire_prequeued", {}).get("jobs_per_second", 0)
        rows.append(
            (
                "2 burst of `true` jobs, 4 at once",
                f"repowire live {t['repowire']['jobs_per_second']:.0f}/s, pre-queued "
                f"(`runner --once`) {prequeued:.0f}/s; " + "; ".join(peers),
                "at least 0.9x nq's rate in the same run",
            )
        )
    if "3" in r:
        rows.append(
            (
                "3 per-second template: slot -> executor start",
                _ms(r["3"]["lateness_ms"]),
                "p99 <= 50 ms",
            )
        )
    if "4" in r:
        for count, f in r["4"].items():
            rows.append(
                (
                    f"4 {int(count):,} records",
                    f"list cold {f['list_cold_s']:.2f} s, warm {f['list_warm_s']:.2f} s, "
                    f"--limit 50 {f.get('list_limit_50_s', 0):.2f} s; "
                    f"usage {f.get('usage_s', 0):.2f} s; "
                    f"show {f['show_s'] * 1000:.0f} ms; runner --once {f['runner_once_s']:.2f} s, "
                    f"{f['runner_peak_rss_mb']:.0f} MB",
                    "100k: warm list <= 1 s, --limit 50 <= 0.15 s, usage <= 1 s; "
                    "runner <= 2 s, <= 150 MB",
                )
            )
    if "5" in r:
        f = r["5"]
        rows.append(
            (
                f"5 idle runner, {f['seconds']} s",
                f"{f['cpu_s']:.3f} CPU s, {f['rss_mb']:.0f} MB",
                "10k records, 60 s: <= 0.05 CPU s, <= 50 MB",
            )
        )
    if "6" in r:
        f = r["6"]
        rows.append(
            (
                "6 `jobs status ID` cold start",
                f"{f['jobs status ID']['p50']:.0f} ms vs pass {f['python -c pass']['p50']:.0f} ms, "
                f"import yaml+click {f['import yaml, click']['p50']:.0f} ms "
                f"({f['ratio_to_import_floor']:.2f}x)",
                "<= 1.2x the import floor",
            )
        )
    if "7" in r:
        f = r["7"]
        rows.append(
            (
                f"7 worktree run, repository of {f['files']:,} files: added start latency",
                f"{f['added_ms']:.0f} ms (worktree p50 {f['worktree_ms']['p50']:.0f} ms, "
                f"in place p50 {f['inplace_ms']['p50']:.0f} ms)",
                "<= 150 ms",
            )
        )
    for run in (r.get("crash") or {}).get("runs", []):
        bad = sum(
            run[k] for k in ("not_succeeded", "ran_more_than_once", "never_ran", "exit_files_left")
        )
        rows.append(
            (
                f"crash loop, seed {run['seed']}: {run['jobs']:,} jobs, {run['kills']} SIGKILLs",
                f"{run['seconds']:.0f} s; {bad} violations (not succeeded {run['not_succeeded']}, "
                f"ran twice {run['ran_more_than_once']}, never ran {run['never_ran']})",
                "0 violations",
            )
        )
    lines = [
        f"Machine: {r['machine']}; date {r['date']}" + ("; quick run" if r["quick"] else ""),
        "",
        "| workload | measured | goal |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
