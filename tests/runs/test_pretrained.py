"""The committed Cora model is the paper's GAT, holds only what looking at it needs, and scores what it says."""

import torch

from models import GATConfig
from utils import paths
from utils.datasets.graph import sparsify_if_mostly_zero
from utils.runs import checkpoints
from utils.runs.pretrained import KEPT_STATE, slim_checkpoint
from utils.training.metrics import accuracy
from utils.training.one_graph import CITATION_ARCHITECTURE
from utils.training.setup import build_model


def test_the_committed_model_is_the_papers_gat_and_scores_its_recorded_accuracy(cora):
    checkpoint = checkpoints.load_checkpoint(paths.PRETRAINED_CORA)
    paper = build_model(CITATION_ARCHITECTURE, cora.node_features.shape[1], cora.num_classes, "IMP3",
                        attention_type="gat")
    assert GATConfig(**checkpoint["config"]) == paper.config
    assert checkpoint["optimizer_state"] is None
    state = checkpoint["training_state"]
    assert set(state) == {*KEPT_STATE, "commit"} and state["dataset"] == "cora"
    assert paths.PRETRAINED_CORA.stat().st_size < 1_000_000

    model, _ = checkpoints.model_from_checkpoint(checkpoint)
    with torch.no_grad():  # eval mode: no dropout, the same logits every time
        logits = model.eval()(sparsify_if_mostly_zero(cora.node_features), cora.edge_index)
    assert accuracy(logits[cora.test_indices], cora.labels[cora.test_indices]) == state["test_acc"]
    assert round(state["test_acc"], 3) == 0.834  # as models/pretrained/README.md says


def test_slimming_a_binary_keeps_its_weights_and_drops_the_rest(cora):
    model = build_model(CITATION_ARCHITECTURE, cora.node_features.shape[1], cora.num_classes, "IMP3")
    binary = checkpoints.make_checkpoint(model, training_state=dict(
        dataset="cora", run_name="r", epoch=300, best_epoch=120, test_acc=0.8, history=[{"epoch": 1}], settings={}))
    slim = slim_checkpoint(binary)
    assert slim["training_state"] == dict(dataset="cora", run_name="r", epoch=120, test_acc=0.8,
                                          commit=binary["training_state"]["commit"])
    assert slim["optimizer_state"] is None and slim["config"] == binary["config"]
    assert all(torch.equal(slim["model_state"][key], value) for key, value in binary["model_state"].items())
