"""What every layer of utils/ may use, importing nothing of the project: `files.py` (atomic writes, writable
folders, paths as a user reads them), `signals.py` (Ctrl-C and SIGTERM deferred to safe points), `lock.py` (one
process per run), `arguments.py` (command-line value checks, on/off flags, help that says each default)."""
