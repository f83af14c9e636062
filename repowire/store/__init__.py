"""The root on disk: finding it, its config.yaml and trust, the locked read-modify-write of
every record, and the derived listing index."""
