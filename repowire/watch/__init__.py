"""File events from watchdog turned into wake-ups of the runner and the names that changed,
and a cheap fingerprint of the records for watching faces."""
