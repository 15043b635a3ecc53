"""README.md stays true: its flag tables match the parsers, its test command is what CI runs."""

import re

from docs.flag_tables import all_tables, every_parser
from utils.data_loading import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()


def test_readme_flag_tables_match_the_argument_parsers():
    assert all_tables() in README, "regenerate with: python -m docs.flag_tables"


def test_ci_runs_exactly_the_readme_test_command():
    ci_script = (PROJECT_ROOT / ".ci" / "run").read_text()
    readme_commands = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    test_command = next(c for c in readme_commands if "pytest" in c)
    assert test_command.strip() in ci_script.splitlines()


def test_readme_figures_exist():
    for path in re.findall(r"\]\((docs/[^)]+\.png)\)", README):
        assert (PROJECT_ROOT / path).is_file(), path


def test_help_says_the_true_defaults_and_every_flag_has_help():
    from utils.train_transductive import CORA_DEFAULTS
    for name, parser in every_parser().items():
        text = parser.format_help()
        for lie in ("(default: None)", "LayerType.", "(default: True)", "(default: False)", "--no-"):
            assert lie not in text, (name, lie)
        for action in parser._actions:
            assert action.help, f"{name} {action.option_strings} has no help text"
    cora_help = every_parser()["training_script_cora.py"].format_help()
    assert "(default: IMP3)" in cora_help and f"(default: {CORA_DEFAULTS['num_of_epochs']})" in cora_help
    assert "--save_binary, --no_save_binary" in cora_help
