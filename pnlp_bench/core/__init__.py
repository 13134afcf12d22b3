"""The run contract shared by both model families: config composition, run identity, records and files.

Nothing in `core/` imports another part of the package, so both families and every command can stand on it."""
