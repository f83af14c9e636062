"""Telling people a job ended: which notify targets are due, a try at each, the runner's
delivery threads, and the inbox of finished runs nobody has looked at."""
