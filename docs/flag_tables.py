"""The flag tables of every command, generated from the argument parsers themselves.

    python -m docs.flag_tables                          # prints docs/flags.md
    python -m docs.flag_tables --write docs/flags.md    # writes it

This generator is the one place allowed to know every script; tests/test_docs.py checks that docs/flags.md
is exactly what it writes, so the tables can never drift from what --help says.
"""

import argparse
from pathlib import Path

from utils.plumbing.arguments import OnOffFlag, describe_default

HEADER = """# Flags

Every flag of every command, generated from the argument parsers (`python -m docs.flag_tables --write
docs/flags.md`; a test keeps this page in sync with them). On/off flags are spelled `--name` and `--no_name`.
`--help` on any command says the same.
"""


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
    """{command as a user types it: its parser}, in the order docs/flags.md lists them."""
    import playground
    import training_script_cora
    import training_script_ppi
    from utils.cli import run_list
    from utils.datasets import convert, ppi_synthetic, sbm_graph

    parsers = {"training_script_cora.py": training_script_cora.get_parser(),
               "training_script_ppi.py": training_script_ppi.get_parser()}
    subparsers = next(a for a in playground.get_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parsers.update({f"playground.py {name}": sub for name, sub in subparsers.choices.items()})
    parsers["python -m utils.datasets.ppi_synthetic"] = ppi_synthetic.get_parser()
    parsers["python -m utils.datasets.sbm_graph"] = sbm_graph.get_parser()
    parsers["python -m utils.datasets.convert"] = convert.get_parser()
    parsers["python -m utils.runs"] = run_list.get_parser()
    return parsers


def all_tables():
    return "\n\n".join(f"**`{title}`**\n\n{flags_table(parser)}" for title, parser in every_parser().items())


def flags_page():
    """The whole of docs/flags.md."""
    return f"{HEADER}\n{all_tables()}\n"


def get_parser():
    parser = argparse.ArgumentParser(description="Print (or write) docs/flags.md, the flag tables of every command.")
    parser.add_argument("--write", metavar="PATH", default=None, help="write the page here instead of printing it")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.write is None:
        print(flags_page(), end="")
        return
    Path(args.write).write_text(flags_page())
    print(f"Wrote {args.write}")


if __name__ == "__main__":
    main()
