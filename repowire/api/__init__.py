"""The library API, the one door of every face: Project, the functions for scripts, the views
every face prints, validate, and housekeeping."""
