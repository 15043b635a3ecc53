"""Shared fixtures. Real Cora comes from $GAT_DATA_DIR (CI points it at ../shared/datasets); without it, on a machine
with network access, it is downloaded into a temporary folder for the session, never into data/.

Nothing the suite runs writes into the repository: checkpoints, binaries, TensorBoard runs and figures
go to temp folders (per test, and per session for module-scoped fixtures and notebook kernels), and
a session-wide check fails the run if a file appears in the checkout anyway. A file that appears in the folders
where a user's own runs write (data/, models/checkpoints/, models/binaries/, runs/) may be theirs, from a run
while the tests ran: outside CI that is a warning naming the files, in CI (nothing else runs there) a failure."""

import os
import warnings

import pytest
import torch

from utils import paths
from utils.datasets.download import DatasetError, resolve_data_dir
from utils.datasets.planetoid import load_planetoid
from utils.paths import PROJECT_ROOT

IGNORED_PARTS = {".git", "__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".import_linter_cache"}
USERS_OUTPUT_FOLDERS = ("data", "models/checkpoints", "models/binaries", "runs")


def _files_in_checkout():
    return {path for path in PROJECT_ROOT.rglob("*") if not IGNORED_PARTS.intersection(path.parts)}


def _redirect_outputs(monkeypatch, folder):
    monkeypatch.setattr(paths, "CHECKPOINTS_DIR", folder / "checkpoints")
    monkeypatch.setattr(paths, "BINARIES_DIR", folder / "binaries")
    monkeypatch.setattr(paths, "RUNS_DIR", folder / "runs")
    monkeypatch.setattr(paths, "FIGURES_DIR", folder / "figures")
    monkeypatch.setattr(paths, "PROFILING_CACHE_DIR", folder / "profiling")
    monkeypatch.setenv("GAT_FIGURES_DIR", str(folder / "figures"))


def the_one(folder, pattern="*.pth"):
    """The only file matching `pattern` under `folder` (a run's files carry its name, which has its start time)."""
    paths = sorted(folder.glob(pattern))
    assert len(paths) == 1, paths
    return paths[0]


@pytest.fixture(scope="session", autouse=True)
def checkout_stays_clean(tmp_path_factory):
    """Session-wide output redirection, and the promise checked: the suite adds no file to the checkout."""
    before = _files_in_checkout()
    with pytest.MonkeyPatch.context() as monkeypatch:
        _redirect_outputs(monkeypatch, tmp_path_factory.mktemp("session_outputs"))
        yield
    added = sorted(str(path.relative_to(PROJECT_ROOT)) for path in _files_in_checkout() - before)
    suites, perhaps_users = blame(added, in_ci=bool(os.environ.get("CI")))
    if perhaps_users:
        warnings.warn(f"files appeared in the checkout's output folders while the tests ran: {perhaps_users}; if "
                      f"you trained or drew figures meanwhile they are yours, else a test ignored utils.paths")
    assert not suites, f"the test suite wrote into the checkout: {suites}"


def blame(added, in_ci):
    """(the suite's files, files that may be a user's own) among the files `added` to the checkout during the
    session: outside CI, those in the folders where the user's own runs write may be theirs."""
    if in_ci:
        return added, []
    users = tuple(f"{folder}/" for folder in USERS_OUTPUT_FOLDERS)
    return [path for path in added if not path.startswith(users)], [path for path in added if path.startswith(users)]


@pytest.fixture(autouse=True)
def isolated_outputs(tmp_path, monkeypatch):
    """Every test gets its own models/checkpoints, models/binaries, runs/ and figure folders."""
    _redirect_outputs(monkeypatch, tmp_path)
    torch.manual_seed(0)
    return tmp_path


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Every device present: the CPU always, CUDA where there is a GPU (tests of layers and fast ops)."""
    return torch.device(request.param)


@pytest.fixture(scope="session")
def cora_data_dir(tmp_path_factory):
    data_dir = resolve_data_dir()
    if not (data_dir / "planetoid" / "ind.cora.graph").exists():
        message = (f"real Cora not found under {data_dir}/planetoid; set GAT_DATA_DIR to a folder with "
                   f"planetoid/ind.cora.* (CI uses ../shared/datasets)")
        if os.environ.get("CI"):
            pytest.fail(message)
        data_dir = tmp_path_factory.mktemp("datasets")
        try:  # a user's machine with network: downloaded for this session, into a temporary folder
            load_planetoid("cora", data_dir)
        except DatasetError:
            pytest.skip(message)
    return data_dir


@pytest.fixture(scope="session")
def cora(cora_data_dir):
    return load_planetoid("cora", cora_data_dir, download=False)
