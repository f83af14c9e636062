"""Worktree runs: each run works in a git worktree of its own, on a branch of its own, so an
unattended executor never touches the user's checkout, index, stash or current branch.

A run's worktree is planned when it is claimed (branch, base, folder: written in the claim, so a
runner killed at any moment knows what to tidy), made just before the executor starts, and
settled once no process of the run is left: what the executor left uncommitted is committed to
its branch, the record gains the branch's head, then the folder is removed (a branch with
nothing beyond its base too). Each step can be done again after a crash. A template with
`continuity: resume` keeps one worktree and one branch for all its runs.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
import uuid
from pathlib import Path

from repowire.errors import shown
from repowire.record.job import Job, Worktree
from repowire.store.records import Store
from repowire.worktrees.git import GitError, commit_of, git_output, run_git

__all__ = [
    "is_shared",
    "branch_for",
    "folder_for",
    "plan",
    "ensure",
    "finalize",
    "clean",
    "remove_leftovers",
    "diff",
    "delete_branch",
    "WorkspaceError",
]

FOLDER = "worktrees"  # under .repowire/, ignored by git
_IGNORE_ALL = "# repowire's worktree runs: never part of the repository\n*\n"


class WorkspaceError(GitError):
    """A worktree run cannot start: no repository, no commit, an unknown base, a taken branch."""


def is_shared(job: Job) -> bool:
    """A template's runs that resume share one worktree; every other run has its own."""
    return bool(job.template) and job.continuity != "fresh"


def _name(job: Job) -> str:
    """What names a run's branch and folder: its template's name when shared, else its id."""
    return str(job.template) if is_shared(job) else job.id


def branch_for(job: Job) -> str:
    return f"repowire/{_name(job)}"


def folder_for(store: Store, job: Job) -> str:
    return str(Path(store.base.name, FOLDER, _name(job)))


_TOPS: dict[Path, Path] = {}  # root -> the top of its repository, once found


def repository(root: Path) -> Path:
    """The top of the git work tree that holds the root."""
    top = _TOPS.get(root)
    if top is not None and (top / ".git").exists():
        return top
    done = run_git(["rev-parse", "--show-toplevel"], root)
    if done.returncode != 0:
        raise WorkspaceError(
            f"the root {root} is not in a git repository, and a worktree run needs one "
            "(git init, then commit)"
        )
    _TOPS[root] = Path(done.stdout.strip())
    return _TOPS[root]


def check_start(store: Store, job: Job) -> None:
    """What a worktree run needs that can be known before it is queued: a repository with a
    commit to start from, and its `base`, if given, a commit of it (WorkspaceError, in the
    words the runner would use)."""
    _start_commit(repository(store.root), job)


def _start_commit(repo: Path, job: Job) -> str:
    """The commit a new worktree run starts from: its base, else HEAD."""
    base = commit_of(repo, job.base or "HEAD")
    if base is None and job.base:
        raise WorkspaceError(f"base {job.base} is not a commit of the repository at {repo}")
    if base is None:
        raise WorkspaceError(
            f"the repository at {repo} has no commits yet; a worktree run starts from one"
        )
    return base


def plan(store: Store, job: Job) -> Worktree:
    """The branch, base and folder of the job's next attempt, checked against the repository."""
    repo = repository(store.root)
    branch = branch_for(job)
    if run_git(["check-ref-format", "--branch", branch], repo).returncode != 0:
        raise WorkspaceError(f"{branch} is not a valid git branch name; choose another job id")
    path = folder_for(store, job)
    tip = commit_of(repo, f"refs/heads/{branch}")
    previous = job.worktree
    if tip is not None and is_shared(job):
        return Worktree(branch, tip, path)  # each run starts where the last one ended
    if tip is not None and previous is not None and previous.branch == branch:
        return Worktree(branch, previous.base, path)  # an attempt again: it goes on from there
    if tip is not None:
        raise WorkspaceError(
            f"branch {branch} already exists and this job did not make it; "
            f"delete it (git branch -D {branch}) or give the job another id"
        )
    return Worktree(branch, _start_commit(repo, job), path)


def ensure(store: Store, tree: Worktree) -> Path:
    """Make the run's worktree (or take the one already there); the root's place inside it."""
    repo = repository(store.root)
    folder = store.root / tree.path
    if not (folder / ".git").is_file():
        _prepare_parent(folder.parent)
        if folder.exists() or folder.is_symlink():
            _discard(folder)  # a half-made or half-removed tree of a runner that was killed
            run_git(["worktree", "prune"], repo)
        add = ["-c", "checkout.workers=0", "worktree", "add", "--quiet", str(folder)]
        exists = commit_of(repo, f"refs/heads/{tree.branch}") is not None
        add += [tree.branch] if exists else ["-b", tree.branch, tree.base]
        if run_git(add, repo).returncode != 0:
            run_git(["worktree", "prune"], repo)  # an entry of a folder deleted by hand
            git_output(add, repo)
    return folder / store.root.resolve().relative_to(repo.resolve())


def _prepare_parent(parent: Path) -> None:
    parent.mkdir(parents=True, exist_ok=True)
    ignore = parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text(_IGNORE_ALL, encoding="utf-8")


def finalize(store: Store, job: Job, tree: Worktree) -> tuple[Worktree, str]:
    """Commit what the run left in its worktree to its branch; the record's new worktree
    entry (head, files changed) and a note saying what changed."""
    repo = repository(store.root)
    folder = store.root / tree.path
    present = (folder / ".git").is_file()
    if present:
        git_output(["add", "--all"], folder)
        if run_git(["diff", "--cached", "--quiet"], folder).returncode == 1:
            message = f"repowire: what job {job.id} left uncommitted (attempt {job.attempt})"
            git_output(["commit", "--quiet", "--no-verify", "--no-gpg-sign", "-m", message], folder)
    tip = commit_of(repo, f"refs/heads/{tree.branch}")
    gone = (
        ""
        if present or tip is None
        else ("; its worktree folder was removed while it ran, so only its commits are kept")
    )
    if tip is None or tip == tree.base:
        done = tree._replace(head="", files_changed=0)
        kept = "kept" if is_shared(job) or job.keep_worktree else "deleted"
        return done, f"worktree run changed no files; branch {tree.branch} {kept}{gone}"
    names = git_output(["diff", "--name-only", "--no-renames", tree.base, tip], repo)
    count = len([line for line in names.splitlines() if line])
    done = tree._replace(head=tip, files_changed=count)
    files = f"{count} file{'s' if count != 1 else ''}"
    return done, f"{files} changed on branch {tree.branch} (head {tip[:12]}){gone}"


def clean(store: Store, job: Job, tree: Worktree) -> None:
    """Let go of a settled run's worktree: its folder removed (unless kept or shared), and its
    branch deleted when it holds nothing beyond its base. Safe to do again after a crash."""
    if is_shared(job) or job.keep_worktree:
        return
    repo = repository(store.root)
    folder = store.root / tree.path
    if (folder / ".git").is_file():
        run_git(["checkout", "--quiet", "--detach"], folder)  # so the branch can be deleted
    if tree.head == "" and commit_of(repo, f"refs/heads/{tree.branch}") == tree.base:
        run_git(["branch", "--quiet", "-D", tree.branch], repo)
    if folder.exists() or folder.is_symlink():
        _discard(folder)
    run_git(["worktree", "prune"], repo)


def _discard(folder: Path) -> None:
    """Remove a folder whole or not at all as far as git can tell: renamed aside first (one
    atomic step), then deleted by a thread of its own, so a big tree does not hold up the
    runner's loop; an aside a crash left is removed by remove_leftovers."""
    aside = folder.with_name(f".trash-{folder.name}-{uuid.uuid4().hex[:8]}")
    try:
        folder.rename(aside)
    except FileNotFoundError:
        return  # another runner of the root set it aside first
    threading.Thread(
        target=shutil.rmtree, args=(aside,), kwargs={"ignore_errors": True}, daemon=True
    ).start()


def remove_leftovers(store: Store) -> None:
    """Folders set aside by a removal a crash interrupted."""
    with contextlib.suppress(OSError):
        for entry in (store.base / FOLDER).glob(".trash-*"):
            shutil.rmtree(entry, ignore_errors=True)


def diff(store: Store, job: Job, stat: bool) -> str:
    """The run's changes against its base: the branch's head once it ended, the worktree
    (committed and uncommitted changes to tracked files) while it runs."""
    tree = job.worktree
    if tree is None:
        raise WorkspaceError(f"job {job.id} did not run in a worktree (workspace: worktree)")
    _check_record(store, job, tree)
    repo = repository(store.root)
    # A record is a file anyone may have written: what reaches git's argv is checked to be a
    # commit id, placed after --end-of-options, and no diff driver or text filter is run.
    options = ["--no-ext-diff", "--no-textconv", *(["--stat"] if stat else [])]
    folder = store.root / tree.path
    if tree.pending and (folder / ".git").is_file():
        return git_output(["diff", *options, "--end-of-options", tree.base], folder)
    if not tree.head:
        return ""
    if commit_of(repo, tree.head) is None:
        raise WorkspaceError(
            f"commit {tree.head[:12]} of job {job.id} is no longer in the repository"
        )
    return git_output(["diff", *options, "--end-of-options", tree.base, tree.head], repo)


_COMMIT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1 or SHA-256


def _check_record(store: Store, job: Job, tree: Worktree) -> None:
    """What a worktree record names is what repowire writes there: commit ids, and a folder
    of the root's own .repowire/worktrees/ (resolved, no link on the way)."""
    for what, value in (("base", tree.base), ("head", tree.head or tree.base)):
        if not _COMMIT_ID.fullmatch(value):
            raise WorkspaceError(
                f"job {job.id}'s worktree {what} {shown(value)} is not a commit id; "
                "refusing to pass it to git"
            )
    own = (store.base / FOLDER).resolve()
    folder = store.root / tree.path
    if folder.resolve().parent != own or folder.is_symlink():
        raise WorkspaceError(
            f"job {job.id}'s worktree path {shown(tree.path)} is not a folder of {own}; "
            "refusing to use it"
        )


def delete_branch(store: Store, job: Job) -> str | None:
    """Delete a removed run's branch (and a kept worktree of it); the branch's name if it was
    there. A template's shared branch stays: later runs go on from it."""
    tree = job.worktree
    if tree is None or is_shared(job):
        return None
    repo = repository(store.root)
    folder = store.root / tree.path
    if folder.exists():
        _discard(folder)
        run_git(["worktree", "prune"], repo)
    if commit_of(repo, f"refs/heads/{tree.branch}") is None:
        return None
    git_output(["branch", "--quiet", "-D", tree.branch], repo)
    return tree.branch
