"""The Annotated GAT is committed with the outputs of a full run, and still runs top to bottom.

Its saved outputs (figures and printed numbers) are regenerated, from the repository root, by

    GAT_DATA_DIR=/path/to/datasets jupyter nbconvert --to notebook --execute --inplace "The Annotated GAT.ipynb"

(about five minutes on a 2-core CPU; without GAT_DATA_DIR, Cora is downloaded into data/).
"""

import os

import nbformat
import pytest

from utils.paths import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "The Annotated GAT.ipynb"
NUM_FIGURES = 8  # Cora's graph and degrees, training curves, attention, entropy, t-SNE; PPI entropy, attention
# What a reader must find in the saved outputs, one phrase per section that prints numbers.
PRINTED = ("edge_index: (2, 13264)",                                      # 2. Cora
           "output of node 0: [1.39",                                    # 3.1 by hand
           "plain PyTorch vs GATLayerImp3: max |difference|",            # 3.2 IMP3's core
           "GATLayerImp4 vs GATLayerImp3: max |difference|",            # 3.3 IMP4's sparse core
           "[13264, 8, 8]", "[2708, 64]",                                # 3.2 its shapes
           "max |difference| to IMP3",                                   # the three implementations
           "restricted pass = those rows of the whole pass: True",       # the graph, built once
           "Test accuracy = 0.8", "kept the model of epoch",             # 4. training
           "committed model: cora GAT of run cora_gat_seed0",            # 5. looking inside
           "mean entropy, learned / uniform, per layer (from 1)",
           "| gatv2 |",                                                  # 6. PPI matching neighbour
           "sources ranked by attention",                                # 7. GAT vs GATv2
           "gatv2: train accuracy")


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def printed_text(notebook):
    return "\n".join(output.get("text", "") + output.get("data", {}).get("text/plain", "")
                     for cell in code_cells(notebook) for output in cell.outputs)


def figures(notebook):
    return [output for cell in code_cells(notebook) for output in cell.outputs
            if "image/png" in output.get("data", {})]


def test_notebook_is_committed_with_the_outputs_of_a_full_run():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    cells = code_cells(notebook)
    # One run, top to bottom, without errors.
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1)), "rerun the whole notebook"
    assert not [output for cell in cells for output in cell.outputs if output.output_type == "error"]
    assert len(figures(notebook)) == NUM_FIGURES
    text = printed_text(notebook)
    for phrase in PRINTED:
        assert phrase in text, phrase
    # Nothing of the machine it ran on: no absolute paths, no warnings pointing into site-packages.
    for path in (str(PROJECT_ROOT), "/home/", "/root/", "/tmp/", "site-packages"):
        assert path not in text, path
    assert "Warning" not in text
    assert "jupyter nbconvert --to notebook --execute --inplace" in notebook.cells[0].source


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(cora_data_dir):
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    env_before = os.environ.get("GAT_DATA_DIR")
    os.environ["GAT_DATA_DIR"] = str(cora_data_dir)  # the kernel inherits the environment
    # CI sets MPLBACKEND=Agg for headless scripts; a kernel that inherits it draws plt figures nowhere, where a
    # notebook's own inline backend shows them as outputs.
    backend_before = os.environ.pop("MPLBACKEND", None)
    try:
        client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                         resources={"metadata": {"path": str(PROJECT_ROOT)}})
        client.execute()
    finally:
        if env_before is None:
            os.environ.pop("GAT_DATA_DIR", None)
        else:
            os.environ["GAT_DATA_DIR"] = env_before
        if backend_before is not None:
            os.environ["MPLBACKEND"] = backend_before
    assert len(figures(notebook)) == NUM_FIGURES
    text = printed_text(notebook)
    for phrase in PRINTED:
        assert phrase in text, phrase
