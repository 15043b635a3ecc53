"""python -m utils.runs: list the runs there are (utils/cli/run_list.py). An entry point, which nothing imports."""

from utils.cli.run_list import get_parser, main  # noqa: F401  (get_parser: for docs/flag_tables.py and the tests)

if __name__ == "__main__":
    main()
