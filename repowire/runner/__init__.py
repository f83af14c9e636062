"""The runner: a step function inside a loop, and the collaborators it hands each step to
(choosing, scheduling, starting, supervising, recovery, outcome, presence, the user service)."""
