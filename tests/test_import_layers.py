"""The house imports only downwards: the contracts in pyproject.toml (import-linter), and no function-local import
of the project's own modules that could hide a loop between them."""

import ast

from utils.paths import PROJECT_ROOT


def test_each_package_imports_only_the_packages_below_it():
    from importlinter.cli import lint_imports
    assert lint_imports(config_filename=str(PROJECT_ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_a_function_imports_the_projects_own_modules_only_to_keep_a_slow_package_off_start_up():
    # (an import inside a function can hide a loop from the contracts above; the only reason for one is a slow
    # third-party package that the imported module brings, said in a comment on the line: "# (here: ...)")
    hidden = []
    for path in sorted([*PROJECT_ROOT.glob("models/**/*.py"), *PROJECT_ROOT.glob("utils/**/*.py")]):
        lines = path.read_text().splitlines()
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("models", "utils"):
                    if "# (here:" not in lines[node.lineno - 1]:
                        hidden.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert not hidden, hidden
