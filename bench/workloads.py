"""The six workloads of the benchmark suite; each returns its figures as a dict."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

from .harness import (
    PYTHON,
    Runner,
    cli,
    drop,
    have,
    record_text,
    scratch_folder,
    scratch_root,
    summary,
    wait_until,
)

STAMP = re.compile(rb"^(\d{10}\.\d+)$", re.M)


def _stamp(log: Path) -> float | None:
    try:
        found = STAMP.findall(log.read_bytes())
    except FileNotFoundError:
        return None
    return float(found[-1]) if found else None


def dispatch_latency(count: int) -> dict[str, Any]:
    """1: an idle runner; a job dropped by atomic rename -> its executor running."""
    with scratch_root() as root:
        runner = Runner(root)
        try:
            samples = []
            for n in range(count):
                dropped = drop(root, f"d{n}", record_text("date +%s.%N"))
                started = wait_until(lambda n=n: _stamp(root / f".repowire/jobs/d{n}.log"), 10)
                samples.append((started - dropped) * 1000)
                time.sleep(0.02)  # the runner goes idle again between drops
        finally:
            runner.stop()
    return {"latency_ms": summary(samples)}


class _Finished:
    """Counts finished records, reading each only until it is seen done (so the benchmark's
    own reads stay small beside the runner's work: no file is read again once done)."""

    def __init__(self, folder: Path, ids: list[str]) -> None:
        self.folder, self.left = folder, set(ids)

    def __call__(self) -> bool:
        for job_id in list(self.left):
            try:
                if b"state: succeeded" in (self.folder / f"{job_id}.yaml").read_bytes():
                    self.left.discard(job_id)
            except FileNotFoundError:
                pass
        return not self.left


def throughput(count: int) -> dict[str, Any]:
    """2: `count` `true` jobs, max_concurrency 4: dropped into a running runner (live), and
    queued before `runner --once` starts (pre-queued); beside tsp -S 4 and nq."""
    out: dict[str, Any] = {}
    ids = [f"t{n:05}" for n in range(count)]
    with scratch_root("max_concurrency: 4\n") as root:
        runner = Runner(root)
        try:
            start = time.time()
            for job_id in ids:
                drop(root, job_id, record_text("true"))
            wait_until(_Finished(root / ".repowire/jobs", ids), 600, 0.2)
            seconds = time.time() - start
        finally:
            runner.stop()
    out["repowire"] = {"seconds": seconds, "jobs_per_second": count / seconds}
    with scratch_root("max_concurrency: 4\n") as root:
        for job_id in ids:
            drop(root, job_id, record_text("true"))
        start = time.time()
        cli("runner", "--once", root=root)
        seconds = time.time() - start
        if not _Finished(root / ".repowire/jobs", ids)():
            raise RuntimeError("runner --once left jobs unfinished")
    out["repowire_prequeued"] = {"seconds": seconds, "jobs_per_second": count / seconds}
    out["tsp"] = _tsp(count) if have("tsp") else "not installed (apt-get install task-spooler)"
    out["nq"] = _nq(count) if have("nq") else "not installed (apt-get install nq)"
    return out


def _tsp(count: int) -> dict[str, float]:
    folder = str(scratch_folder("peer-"))
    env = {
        **os.environ,
        "TS_SOCKET": f"{folder}/socket",
        "TMPDIR": folder,
        "TS_MAXFINISHED": str(count + 10),
    }
    subprocess.run(["tsp", "-S", "4"], env=env, check=True, capture_output=True)
    start = time.time()
    for _ in range(count):
        subprocess.run(["tsp", "true"], env=env, check=True, capture_output=True)

    def finished() -> bool:
        listing = subprocess.run(["tsp", "-l"], env=env, capture_output=True, text=True)
        return listing.stdout.count("finished") >= count

    wait_until(finished, 600, 0.05)
    seconds = time.time() - start
    subprocess.run(["tsp", "-K"], env=env, capture_output=True)
    return {"seconds": seconds, "jobs_per_second": count / seconds}


def _nq(count: int) -> dict[str, float]:
    folder = str(scratch_folder("peer-"))
    env = {**os.environ, "NQDIR": folder}
    start = time.time()
    for _ in range(count):
        subprocess.run(["nq", "true"], env=env, check=True, capture_output=True)
    subprocess.run(["nq", "-w"], env=env, check=True, capture_output=True)
    seconds = time.time() - start
    return {"seconds": seconds, "jobs_per_second": count / seconds, "note": "nq runs serially"}


def cron_precision(seconds: int) -> dict[str, Any]:
    """3: a per-second template: scheduled slot -> executor start."""
    with scratch_root() as root:
        folder = root / ".repowire/agents/tick"
        folder.mkdir(parents=True)
        (folder / "job.yaml").write_text(
            "cron: '* * * * * *'\ncommand: date +%s.%N\noverlap: allow\nkeep_runs: 1000\n"
        )
        runner = Runner(root)
        time.sleep(seconds)
        runner.stop()
        samples = []
        for record in (root / ".repowire/jobs").glob("tick-*.yaml"):
            data = yaml.safe_load(record.read_text())
            started = _stamp(record.with_suffix(".log"))
            if started is not None:
                samples.append((started - data["scheduled_for"].timestamp()) * 1000)
    return {"lateness_ms": summary(samples)}


def _populate(root: Path, count: int) -> None:
    jobs = root / ".repowire/jobs"
    text = record_text("true", "succeeded") + (
        "usage: {input_tokens: 1200, output_tokens: 300, cost_usd: 0.0123, model: m}\n"
    )
    for n in range(count):
        (jobs / f"r{n:06}.yaml").write_text(text)


def _timed(*args: str, root: Path) -> float:
    """The command's wall time, its output thrown away (not read and decoded here)."""
    start = time.perf_counter()
    subprocess.run(
        [PYTHON, "-m", "repowire", "--root", str(root), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=True,
    )
    return time.perf_counter() - start


def scale(counts: list[int]) -> dict[str, Any]:
    """4: list cold and warm, show one id, runner start-up time and memory, at each count."""
    out: dict[str, Any] = {}
    for count in counts:
        with scratch_root() as root:
            _populate(root, count)
            cold = _timed("jobs", "list", "--json", root=root)
            os.sync()  # the records and the index written back before the warm figures
            warm = min(_timed("jobs", "list", "--json", root=root) for _ in range(3))
            show = min(_timed("jobs", "show", "r000007", root=root) for _ in range(5))
            limit = min(
                _timed("jobs", "list", "--json", "--limit", "50", root=root) for _ in range(3)
            )
            usage = min(_timed("usage", root=root) for _ in range(3))
            start = time.perf_counter()
            runner = subprocess.Popen(
                [PYTHON, "-m", "repowire", "--root", str(root), "runner", "--once"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _pid, status, spent = os.wait4(runner.pid, 0)  # this process's own peak
            runner.returncode = os.waitstatus_to_exitcode(status)
            startup = time.perf_counter() - start
            if runner.returncode != 0:
                raise RuntimeError(f"runner --once exited {runner.returncode}")
            out[str(count)] = {
                "list_cold_s": cold,
                "list_warm_s": warm,
                "show_s": show,
                "list_limit_50_s": limit,
                "usage_s": usage,
                "runner_once_s": startup,
                "runner_peak_rss_mb": spent.ru_maxrss / 1024,
            }
    return out


def idle(records: int, seconds: int) -> dict[str, Any]:
    """5: an idle runner with `records` records: CPU seconds used and resident memory."""
    with scratch_root() as root:
        _populate(root, records)
        os.sync()
        runner = Runner(root)
        try:
            proc = psutil.Process(runner.proc.pid)
            _settle(proc)  # past start-up: the first reconcile parses every record
            before = proc.cpu_times()
            time.sleep(seconds)
            after = proc.cpu_times()
            rss = proc.memory_info().rss / 2**20
        finally:
            runner.stop()
    cpu = (after.user + after.system) - (before.user + before.system)
    return {"seconds": seconds, "cpu_s": cpu, "rss_mb": rss}


def _settle(proc: psutil.Process) -> None:
    """Wait until the process stops using CPU (its start-up is over)."""
    last = -1.0
    while True:
        times = proc.cpu_times()
        used = times.user + times.system
        if used - last < 0.02:
            return
        last = used
        time.sleep(1)


def cold_start(repeat: int) -> dict[str, Any]:
    """6: `jobs status ID` against `python -c pass` and `python -c "import yaml, click"`.
    The package's bytecode is compiled first, as an install does (where PYTHONDONTWRITEBYTECODE
    is set, an editable checkout would otherwise compile every changed module on every run)."""
    package = Path(__file__).resolve().parent.parent / "repowire"
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(package)], check=True)
    with scratch_root() as root:
        (root / ".repowire/jobs/one.yaml").write_text(record_text("true"))
        commands = {
            "python -c pass": [PYTHON, "-c", "pass"],
            "import yaml, click": [PYTHON, "-c", "import yaml, click"],
            "jobs status ID": [
                PYTHON,
                "-m",
                "repowire",
                "--root",
                str(root),
                "jobs",
                "status",
                "one",
            ],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(repeat):  # in turns, so a change in the machine's speed hits all alike
            for name, argv in commands.items():
                start = time.perf_counter()
                subprocess.run(argv, check=True, capture_output=True)
                samples[name].append((time.perf_counter() - start) * 1000)
        out: dict[str, Any] = {name: summary(times) for name, times in samples.items()}
    out["ratio_to_import_floor"] = out["jobs status ID"]["p50"] / out["import yaml, click"]["p50"]
    return out


def _repository(root: Path, files: int) -> None:
    """A git repository of `files` small files in 100-file folders, committed."""
    for n in range(files):
        folder = root / "src" / f"d{n // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{n:05d}.txt").write_text(f"line {n}\n" * 8)
    quiet = {"capture_output": True, "check": True, "cwd": root}
    subprocess.run(["git", "init", "-q"], **quiet)  # type: ignore[call-overload]
    subprocess.run(["git", "add", "-A"], **quiet)  # type: ignore[call-overload]
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q", "-m", "files"],
        **quiet,  # type: ignore[call-overload]
    )


def worktree_start(count: int, files: int) -> dict[str, Any]:
    """7: drop -> executor running for an in-place run and a worktree run, taken in turns by
    an idle runner in a repository of `files` files; the difference is the worktree's cost."""
    samples: dict[str, list[float]] = {"inplace": [], "worktree": []}
    with scratch_root() as root:
        _repository(root, files)
        runner = Runner(root)
        try:
            for n in range(count):
                for kind, extra in (("inplace", ""), ("worktree", "workspace: worktree\n")):
                    job_id = f"{kind}{n}"
                    dropped = drop(root, job_id, record_text("date +%s.%N") + extra)
                    log = root / f".repowire/jobs/{job_id}.log"
                    started = wait_until(lambda log=log: _stamp(log), 30)
                    samples[kind].append((started - dropped) * 1000)
                    done = root / f".repowire/jobs/{job_id}.yaml"
                    wait_until(lambda done=done: b"succeeded" in done.read_bytes(), 30)
                    trees = root / ".repowire/worktrees"
                    wait_until(lambda t=trees: len(list(t.glob("*"))) <= 1, 30)  # all removed
                    time.sleep(0.2)  # and written back, so one sample does not slow the next
        finally:
            runner.stop()
    inplace, worktree = summary(samples["inplace"]), summary(samples["worktree"])
    return {
        "files": files,
        "inplace_ms": inplace,
        "worktree_ms": worktree,
        "added_ms": worktree["p50"] - inplace["p50"],
    }
