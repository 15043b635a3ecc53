"""The flag tables of every command, generated from the argument parsers themselves.

    python -m docs.flag_tables       # prints the tables that README.md carries

This generator is the one place allowed to know every script; tests/test_docs.py checks that README.md
carries exactly what it prints, so the tables can never drift from what --help says.
"""

import argparse

from utils.flags import OnOffFlag, describe_default


def flags_table(parser):
    rows = ["| flag | default | what it does |", "|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or not action.option_strings:
            continue
        flag = " / ".join(action.option_strings) if isinstance(action, OnOffFlag) else max(action.option_strings,
                                                                                          key=len)
        default = describe_default(action)
        choices = f" ({', '.join(map(str, action.choices))})" if action.choices else ""
        help_text = (action.help or "").replace("|", "\\|")
        rows.append(f"| `{flag}` | {'' if default is None else f'`{default}`'} | {help_text}{choices} |")
    return "\n".join(rows)


def every_parser():
    """{command as a user types it: its parser}, in the order the README lists them."""
    import playground
    import training_script_cora
    import training_script_ppi
    from utils import ppi_synthetic, runs, sbm_graph

    parsers = {"training_script_cora.py": training_script_cora.get_parser(),
               "training_script_ppi.py": training_script_ppi.get_parser()}
    subparsers = next(a for a in playground.get_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parsers.update({f"playground.py {name}": sub for name, sub in subparsers.choices.items()})
    parsers["python -m utils.ppi_synthetic"] = ppi_synthetic.get_parser()
    parsers["python -m utils.sbm_graph"] = sbm_graph.get_parser()
    parsers["python -m utils.runs"] = runs.get_parser()
    return parsers


def all_tables():
    return "\n\n".join(f"**`{title}`**\n\n{flags_table(parser)}" for title, parser in every_parser().items())


if __name__ == "__main__":
    print(all_tables())
