"""README.md and docs/ stay true: the flag tables match the parsers, the test command is what CI runs, every
command parses with the parser of the script it names, every link and figure and file they name exists, and
they speak about the code, not about how it was developed."""

import argparse
import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from docs.flag_tables import every_parser, flags_page
from utils.paths import PROJECT_ROOT

README_PATH = PROJECT_ROOT / "README.md"
DOC_PATHS = [README_PATH, *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
README = README_PATH.read_text()
NOTEBOOK_PATH = PROJECT_ROOT / "The Annotated GAT.ipynb"


def _name(path):
    return str(path.relative_to(PROJECT_ROOT))


def code_blocks(text):
    """The fenced code blocks of a markdown text that hold shell lines: ```bash and plain ``` ones."""
    return [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M) if lang in ("", "bash")]


# ----------------------------------------------------------------------------- flags, CI, figures, links, files

def test_flags_page_is_what_the_parsers_say():
    assert (PROJECT_ROOT / "docs" / "flags.md").read_text() == flags_page(), \
        "docs/flags.md is out of date: regenerate it with python -m docs.flag_tables --write docs/flags.md"


def test_ci_runs_exactly_the_readme_test_command():
    ci_lines = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    ci_test_command = next(line for line in ci_lines if "pytest" in line and not line.lstrip().startswith("#"))
    readme_bash_lines = {line.strip() for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", README, re.S | re.M)
                         if lang == "bash" for line in body.splitlines()}
    assert ci_test_command.strip() in readme_bash_lines, \
        f"README.md must show CI's test command in a ```bash block: {ci_test_command.strip()}"


def test_the_quick_subset_in_the_readme_is_a_registered_marker():
    assert 'python -m pytest -m "not slow"' in README
    assert re.search(r"^\s*\"slow:", (PROJECT_ROOT / "pyproject.toml").read_text(), re.M)


@pytest.mark.parametrize("doc", DOC_PATHS, ids=_name)
def test_links_and_figures_exist(doc):
    """Every relative link (figures included) names a file that exists, and every #anchor a heading there."""
    text = doc.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        assert linked.exists(), f"{_name(doc)} links to {target}, which does not exist"
        if anchor:
            assert anchor in heading_anchors(linked.read_text()), f"{_name(doc)}: no heading for {target}"


def heading_anchors(text):
    """GitHub's anchors for a markdown text's headings: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_readme_figures_exist():
    figures = re.findall(r"\]\((docs/[^)]+\.png)\)", README)
    assert figures, "the README shows its figure"
    for path in figures:
        assert (PROJECT_ROOT / path).is_file(), path


def test_the_layout_table_names_files_that_exist():
    layout = README.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in layout.splitlines() if line.startswith("| `")]
    paths = [path for cell in first_cells for path in re.findall(r"`([^`]+)`", cell)]
    assert len(paths) > 20, paths
    missing = [path for path in paths if not (PROJECT_ROOT / path.rstrip("/")).exists()]
    assert not missing, f"README.md's layout names paths that do not exist: {missing}"
    for question in ("where attention is computed", "where data is loaded", "where the training loop is",
                     "where a figure is drawn"):
        assert question in layout, question


# ----------------------------------------------------------------------------- words a user reads

# Words about how the project was developed, not about what it does.
DEVELOPMENT_WORDS = re.compile(
    r"\b(sessions?|this round|the round|performance round|rounds? [0-9]|this task|task had|this VM|"
    r"where this was developed|our CI|stages? of (the )?work)\b", re.I)


def user_facing_texts():
    texts = {_name(path): path.read_text() for path in DOC_PATHS}
    notebook = json.loads(NOTEBOOK_PATH.read_text())
    texts.update({f"{NOTEBOOK_PATH.name}, cell {index}": "".join(cell["source"])
                  for index, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "markdown"})
    return texts


def test_no_words_about_how_the_project_is_developed():
    found = [f"{where}: ...{text[max(0, m.start() - 40):m.end() + 40]}..".replace("\n", " ")
             for where, text in user_facing_texts().items() for m in DEVELOPMENT_WORDS.finditer(text)]
    assert not found, "say what the code does and how it was measured (machine, software), not how the " \
                      "project was developed:\n" + "\n".join(found)


@pytest.mark.parametrize("text", ["measured in the second session", "after performance round 2",
                                  "Measured on this VM", "as our CI does", "this task had no GPU",
                                  "in Round 3 of the work", "the stages of work"])
def test_the_development_words_check_catches(text):
    assert DEVELOPMENT_WORDS.search(text)


@pytest.mark.parametrize("text", ["40-400 pairs of runs", "rounded to 3 digits", "a two-stage pipeline",
                                  "the task of node classification"])
def test_the_development_words_check_lets_through(text):
    assert not DEVELOPMENT_WORDS.search(text)


# ----------------------------------------------------------------------------- Python snippets run as written

RUN_MARK = "<!-- runs as a test: tests/test_docs.py -->"
INSTALLED_MARK = "<!-- runs as a test from another folder, installed: tests/test_docs.py -->"
USAGE = (PROJECT_ROOT / "docs" / "usage.md").read_text()


def marked_snippets(text, mark):
    snippets = re.findall(r"^" + re.escape(mark) + r"\n```python\n(.*?)^```", text, re.S | re.M)
    assert text.count(mark) == len(snippets), "a mark must come right before ```python"
    return snippets


@pytest.mark.parametrize("doc", ["README.md", "docs/usage.md"])
def test_the_marked_python_snippets_run(doc, capsys):
    """The Python examples marked to run (those that need no dataset or trained model) run in order, in one
    namespace per page, as a reader would paste them."""
    snippets = marked_snippets((PROJECT_ROOT / doc).read_text(), RUN_MARK)
    assert len(snippets) >= 1
    namespace = {"__name__": "docs"}
    for number, snippet in enumerate(snippets):
        exec(compile(snippet, f"{doc} python snippet {number + 1}", "exec"), namespace)
    assert "[(15, 4), (15, 1)]" in capsys.readouterr().out  # what the first snippet's comment says it prints


@pytest.mark.slow
def test_the_layers_install_under_their_own_name_and_run_from_another_folder(tmp_path):
    """pip installs models/ as pytorch_gat (pyproject.toml); the README's snippet then runs from a folder that has
    a `models` package of its own, with the repository nowhere on the path."""
    source = tmp_path / "source"
    (source / "models").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    for path in (PROJECT_ROOT / "models").glob("*.py"):
        shutil.copy(path, source / "models" / path.name)
    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                                "--no-index", "--target", str(site), str(source)], capture_output=True, text=True,
                               timeout=300)
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "models").mkdir(parents=True)
    (elsewhere / "models" / "__init__.py").write_text("raise ImportError('a models package of your own')\n")
    (snippet,) = marked_snippets(README, INSTALLED_MARK)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    ran = subprocess.run([sys.executable, "-c", snippet], cwd=elsewhere, env=dict(environment, PYTHONPATH=str(site)),
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "torch.Size([3, 2])"


# ----------------------------------------------------------------------------- commands run as written

SCRIPTS = ("training_script_cora.py", "training_script_ppi.py", "playground.py")
MODULE_PREFIXES = ("benchmarks.", "utils.", "docs.")


def documented_commands():
    """(where, command line) for every `python <script> ...`, `python -m benchmarks|utils|docs.X ...` and
    `torchrun ... <script> ...` in the code blocks of README.md and docs/*.md, and in their inline code."""
    found = []
    for doc in DOC_PATHS:
        if doc.name == "flags.md":  # generated from the parsers themselves
            continue
        text = doc.read_text()
        lines = [line for block in code_blocks(text) for line in block.splitlines()]
        lines += [" ".join(span.split()) for span in re.findall(r"(?<!`)`([^`\n]+(?:\n[^`\n]+)?)`(?!`)", text)
                  if "..." not in span]
        for line in lines:
            line = line.strip().removeprefix("$ ")
            for command in re.split(r"&&|\|\||;|\|", line):
                words = _words(command)
                if words and _target(words) is not None:
                    found.append((_name(doc), " ".join(words)))
    return found


def _words(command):
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return []
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value python ...
        words = words[1:]
    return words


def _target(words):
    """(kind, name, argv) of a command this test checks, or None."""
    if words[0] == "torchrun":
        rest = words[1:]
        while rest and rest[0].startswith("-"):
            rest = rest[1:]
        return ("script", rest[0], rest[1:]) if rest and rest[0] in SCRIPTS else None
    if words[0] not in ("python", "python3") or len(words) < 2:
        return None
    if words[1] in SCRIPTS:
        return "script", words[1], words[2:]
    if words[1] == "-m" and len(words) > 2 and words[2].startswith(MODULE_PREFIXES):
        return "module", words[2], words[3:]
    return None


COMMANDS = documented_commands()


def test_the_docs_show_commands_of_every_kind():
    names = {_target(command.split())[1] for _, command in COMMANDS}
    for expected in ("training_script_cora.py", "training_script_ppi.py", "playground.py", "benchmarks.accuracy",
                     "benchmarks.pyg_accuracy", "benchmarks.bench_speed", "utils.runs", "docs.flag_tables"):
        assert expected in names, expected


class _Parsed(Exception):
    def __init__(self, namespace):
        self.namespace = namespace


def parse_as_the_command_would(kind, name, argv, monkeypatch):
    """Parse argv with the parser the command uses, and run nothing: a module's get_parser() where it has one,
    else its main() up to the moment it parses its arguments."""
    module = importlib.import_module(name.removesuffix(".py")) if kind == "script" else importlib.import_module(name)
    if hasattr(module, "__path__"):  # a package: `python -m` runs its __main__
        module = importlib.import_module(f"{name}.__main__")
    if hasattr(module, "get_parser"):
        return module.get_parser().parse_args(argv)
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(parser, args=None, namespace=None):
        raise _Parsed(original(parser, args, namespace))

    if module.main.__code__.co_argcount == 0:  # a command without arguments
        assert not argv, f"{name} takes no arguments, the docs give it {argv}"
        return None
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    try:
        module.main(argv)
    except _Parsed as parsed:
        return parsed.namespace
    pytest.fail(f"{name}'s main() ran without parsing its arguments")


@pytest.mark.parametrize("where,command", COMMANDS, ids=[f"{w}: {c}"[:120] for w, c in COMMANDS])
def test_documented_command_parses(where, command, monkeypatch, capsys):
    kind, name, argv = _target(shlex.split(command))
    try:
        parse_as_the_command_would(kind, name, argv, monkeypatch)
    except SystemExit as stop:
        pytest.fail(f"{where}: `{command}` does not parse (exit {stop.code}): {capsys.readouterr().err.strip()}")


def test_the_command_check_catches_a_wrong_flag(monkeypatch, capsys):
    for kind, name, argv in (("script", "training_script_cora.py", ["--num_epochs", "3"]),
                             ("module", "benchmarks.bench_speed", ["--workloads", "cora", "--repats", "3"])):
        with pytest.raises(SystemExit):
            parse_as_the_command_would(kind, name, argv, monkeypatch)


# ----------------------------------------------------------------------------- --help

def test_help_says_the_true_defaults_and_every_flag_has_help():
    from utils.training.one_graph import ONE_GRAPH_DEFAULTS
    for name, parser in every_parser().items():
        text = parser.format_help()
        for lie in ("(default: None)", "LayerType.", "(default: True)", "(default: False)", "--no-"):
            assert lie not in text, (name, lie)
        for action in parser._actions:
            assert action.help, f"{name} {action.option_strings} has no help text"
    cora_help = every_parser()["training_script_cora.py"].format_help()
    assert "(default: IMP3)" in cora_help and f"(default: {ONE_GRAPH_DEFAULTS['num_of_epochs']})" in cora_help
    assert "--save_binary, --no_save_binary" in cora_help


def test_the_own_graph_example_writes_a_graph_whose_classes_can_be_learned(tmp_path, monkeypatch):
    """The own-graph snippet of docs/usage.md, run as written in an empty folder: its classes follow its edges (not chance)."""
    from utils.datasets.npz_graph import load_npz_graph
    snippet = next(body for body in re.findall(r"^```python\n(.*?)^```", USAGE, re.S | re.M)
                   if 'save_npz_graph("my_graph.npz"' in body)
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md own-graph snippet", "exec"), {"__name__": "readme"})
    graph = load_npz_graph(tmp_path / "my_graph.npz")
    sources, targets = graph.edge_index
    between_nodes = sources != targets
    same_class = (graph.labels[sources] == graph.labels[targets])[between_nodes].float().mean().item()
    assert graph.num_nodes == 500 and graph.num_classes == 3
    assert same_class > 0.8, same_class  # (random labels: about 1/3)
