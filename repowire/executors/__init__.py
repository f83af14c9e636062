"""Where attempts run: the Executor contract, preparing an attempt (folder, environment, argv),
local process groups and Slurm."""
