"""python -m utils.runs: list the runs there are (see utils/runs/listing.py)."""

from utils.runs.listing import get_parser, main  # noqa: F401  (get_parser: for docs/flag_tables.py and the tests)

if __name__ == "__main__":
    main()
