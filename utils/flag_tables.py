"""Markdown tables of every script's flags, generated from the argument parsers themselves.

    python -m utils.flag_tables        # prints the tables that README.md carries

tests/test_docs.py checks that README.md contains exactly these tables, so they cannot drift.
"""

import argparse


def flags_table(parser):
    rows = ["| flag | default | what it does |", "|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or not action.option_strings:
            continue
        flag = " / ".join(action.option_strings) if isinstance(action, argparse.BooleanOptionalAction) \
            else max(action.option_strings, key=len)
        default = action.default
        if isinstance(action, argparse.BooleanOptionalAction):
            default = "on" if action.default else "off"
        elif isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)) or action.nargs == 0:
            default = "off"
        elif hasattr(default, "name"):
            default = default.name
        elif isinstance(default, (list, tuple)):
            default = " ".join(getattr(d, "name", str(d)) for d in default)
        choices = f" ({', '.join(map(str, action.choices))})" if action.choices else ""
        help_text = (action.help or "").replace("|", "\\|")
        rows.append(f"| `{flag}` | {'' if default is None else f'`{default}`'} | {help_text}{choices} |")
    return "\n".join(rows)


def all_tables():
    import playground
    import training_script_cora
    import training_script_ppi

    sections = [("training_script_cora.py", training_script_cora.get_parser()),
                ("training_script_ppi.py", training_script_ppi.get_parser())]
    subparsers = next(a for a in playground.get_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        sections.append((f"playground.py {name}", sub))
    return "\n\n".join(f"**`{title}`**\n\n{flags_table(parser)}" for title, parser in sections)


if __name__ == "__main__":
    print(all_tables())
