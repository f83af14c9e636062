"""Agent backends: presets that turn a job into an agent CLI's argv, session ids, and the usage
and cost each CLI reports."""
