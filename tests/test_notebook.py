"""The Annotated GAT runs top to bottom, and is committed without outputs."""

import os

import nbformat
import pytest

from utils.data_loading import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "The Annotated GAT.ipynb"


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "strip outputs before committing"


def test_notebook_runs_top_to_bottom(cora_data_dir):
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    env_before = os.environ.get("GAT_DATA_DIR")
    os.environ["GAT_DATA_DIR"] = str(cora_data_dir)  # the kernel inherits the environment
    try:
        client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                         resources={"metadata": {"path": str(PROJECT_ROOT)}})
        client.execute()
    finally:
        if env_before is None:
            os.environ.pop("GAT_DATA_DIR", None)
        else:
            os.environ["GAT_DATA_DIR"] = env_before
    text = "\n".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for output in cell.outputs)
    assert "max |difference| to IMP3" in text and "Test accuracy = 0." in text
