"""The job record, the template and the executor handle as typed data: parsing, validation,
the transition table and serialising. No I/O: every layer above reads and writes through these."""
