"""Recurring work: template folders and their state, cron and catch-up, the runs of a slot,
chaining with `then`, budgets, and what people look up before they schedule."""
