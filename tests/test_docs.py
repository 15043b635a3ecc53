"""README.md stays true: its flag tables match the parsers, its test command is what CI runs."""

import re

from utils.data_loading import PROJECT_ROOT
from utils.flags import all_tables

README = (PROJECT_ROOT / "README.md").read_text()


def test_readme_flag_tables_match_the_argument_parsers():
    assert all_tables() in README, "regenerate with: python -m utils.flags"


def test_ci_runs_exactly_the_readme_test_command():
    ci_script = (PROJECT_ROOT / ".ci" / "run").read_text()
    readme_commands = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    test_command = next(c for c in readme_commands if "pytest" in c)
    assert test_command.strip() in ci_script.splitlines()


def test_readme_figures_exist():
    for path in re.findall(r"\]\((docs/[^)]+\.png)\)", README):
        assert (PROJECT_ROOT / path).is_file(), path
