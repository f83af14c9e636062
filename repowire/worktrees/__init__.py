"""git for worktree runs: one worktree and branch per run, settled and removed safely."""
