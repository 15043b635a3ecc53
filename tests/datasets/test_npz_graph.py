"""The gnn-benchmark .npz loader: the real cora.npz and what it shares with Planetoid Cora, both feature and
both label layouts, files written by save_npz_graph and by hand, and every malformed file refused by name."""

import collections
import os
import shutil
import urllib.error

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from utils.datasets import download as data_loading
from utils.datasets import npz_graph
from utils.datasets.download import DatasetError, resolve_data_dir, sha256_of
from utils.datasets.npz_graph import load_npz_graph, save_npz_graph
from utils.datasets.splits import largest_connected_component


@pytest.fixture(scope="module")
def cora_npz_dir():
    data_dir = resolve_data_dir()
    if not (data_dir / "npz" / "cora.npz").exists():
        message = (f"real cora.npz not found under {data_dir}/npz; set GAT_DATA_DIR to a folder with "
                   f"npz/cora.npz (CI uses ../shared/datasets)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return data_dir


@pytest.fixture(scope="module")
def cora_npz(cora_npz_dir):
    return load_npz_graph("cora", cora_npz_dir, download=False)


def edge_keys(graph):
    source, target = graph.edge_index
    return source * graph.num_nodes + target, target * graph.num_nodes + source


def assert_clean_edges(graph):
    """Symmetric, exactly one self loop per node, no duplicate edge."""
    source, target = graph.edge_index
    is_loop = source == target
    assert sorted(source[is_loop].tolist()) == list(range(graph.num_nodes))
    forward, backward = edge_keys(graph)
    assert len(set(forward.tolist())) == graph.edge_index.shape[1]
    assert set(forward.tolist()) == set(backward.tolist())


# ----------------------------------------------------------------------------- the real cora.npz

def test_real_cora_npz_known_facts(cora_npz_dir, cora_npz):
    path = cora_npz_dir / "npz" / "cora.npz"
    pinned = npz_graph.KNOWN_SHA256["cora.npz"]
    assert sha256_of(path) == pinned
    sums = cora_npz_dir / "npz" / "SHA256SUMS"
    if sums.exists():
        assert f"{pinned}  cora.npz" in sums.read_text()

    graph = cora_npz
    assert graph.name == "cora" and graph.train_indices is None
    assert graph.node_features.shape == (2708, 1433) and graph.node_features.dtype == torch.float32
    torch.testing.assert_close(graph.node_features.sum(dim=1), torch.ones(2708))  # no empty bag of words
    assert graph.num_classes == 7 and set(graph.labels.tolist()) == set(range(7))
    with np.load(path) as archive:  # the file's class ids are the alphabetical order of its class names
        assert list(archive["class_names"]) == sorted(archive["class_names"])
        assert list(archive["class_names"])[2] == "Neural_Networks"
    assert sorted(collections.Counter(graph.labels.tolist()).values()) == [180, 217, 298, 351, 418, 426, 818]

    assert_clean_edges(graph)
    assert graph.edge_index.shape[1] == 2 * 5278 + 2708  # 5,429 stored citations: 5,278 undirected edges

    # Shchur et al. (2018), Table 1, report Cora's largest connected component: 2,485 nodes, 5,069 edges.
    component = largest_connected_component(graph.edge_index, graph.num_nodes)
    assert len(component) == 2485
    inside = torch.zeros(graph.num_nodes, dtype=torch.bool)
    inside[component] = True
    source, target = graph.edge_index
    assert int((inside[source] & inside[target] & (source < target)).sum()) == 5069


def test_cora_npz_is_planetoid_cora_reordered(cora_npz, cora):
    """cora.npz is Planetoid's Cora, not Cora-ML (2,995 nodes): the same 2,708 papers, 1,433 words and 5,278
    citations. What must agree is everything order-free: the multiset of bag-of-words rows, class sizes,
    degrees, and, for nodes matched by their word row, their class (up to renaming) and their edges.
    What differs is only order: cora.npz lists papers by id (as strings) and numbers classes alphabetically;
    Planetoid puts its training nodes first and uses its own class numbering. 27 papers share their exact
    word row with another paper, so matching by words cannot tell those apart; they are left out below."""
    npz_words = (cora_npz.node_features > 0).numpy()
    planetoid_words = (cora.node_features > 0).numpy()
    assert npz_words.shape == planetoid_words.shape == (2708, 1433)
    assert collections.Counter(map(bytes, npz_words)) == collections.Counter(map(bytes, planetoid_words))

    nodes_with_row = collections.defaultdict(list)
    for node, row in enumerate(npz_words):
        nodes_with_row[bytes(row)].append(node)
    npz_node_of = np.array([nodes_with_row[bytes(row)][0] if len(nodes_with_row[bytes(row)]) == 1 else -1
                            for row in planetoid_words])
    matched = np.flatnonzero(npz_node_of >= 0)
    assert len(matched) == 2708 - 27

    class_pairs = set(zip(cora.labels[matched].tolist(), cora_npz.labels[npz_node_of[matched]].tolist()))
    assert len(class_pairs) == 7 and len({npz for _, npz in class_pairs}) == 7  # one renaming of the 7 classes
    assert sorted(torch.bincount(cora.labels).tolist()) == sorted(torch.bincount(cora_npz.labels).tolist())

    degree_planetoid = torch.bincount(cora.edge_index[1], minlength=2708)
    degree_npz = torch.bincount(cora_npz.edge_index[1], minlength=2708)
    assert sorted(degree_planetoid.tolist()) == sorted(degree_npz.tolist())
    assert cora.edge_index.shape == cora_npz.edge_index.shape

    source, target = cora.edge_index.numpy()
    both_matched = (npz_node_of[source] >= 0) & (npz_node_of[target] >= 0)
    mapped = set(zip(npz_node_of[source[both_matched]].tolist(), npz_node_of[target[both_matched]].tolist()))
    npz_source, npz_target = cora_npz.edge_index.tolist()
    assert len(mapped) == int(both_matched.sum()) > 13000
    assert mapped <= set(zip(npz_source, npz_target))


def test_named_dataset_found_in_npz_folder_itself_and_checked(cora_npz_dir, tmp_path):
    graph = load_npz_graph("CORA", cora_npz_dir / "npz", download=False)  # DIR = the npz/ folder itself
    assert graph.num_nodes == 2708

    (tmp_path / "npz").mkdir()
    copy = tmp_path / "npz" / "cora.npz"
    shutil.copy(cora_npz_dir / "npz" / "cora.npz", copy)
    copy.chmod(0o644)
    with open(copy, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(DatasetError, match=r"cora\.npz.*SHA-256"):
        load_npz_graph("cora", tmp_path, download=False)


def test_missing_named_dataset_says_where_to_put_it(tmp_path, monkeypatch):
    with pytest.raises(DatasetError) as error:
        load_npz_graph("amazon-photo", tmp_path, download=False)
    assert str(tmp_path / "npz" / "amazon_electronics_photo.npz") in str(error.value)
    assert f"{npz_graph.NPZ_URL}/amazon_electronics_photo.npz" in str(error.value)

    def refuse_network(*args, **kwargs):
        raise urllib.error.URLError("no network in this test")
    monkeypatch.setattr(data_loading.urllib.request, "urlopen", refuse_network)
    with pytest.raises(DatasetError, match="amazon_electronics_photo.npz"):
        load_npz_graph("amazon-photo", tmp_path)
    assert not (tmp_path / "npz" / "amazon_electronics_photo.npz").exists()


def test_unknown_name_and_missing_path(tmp_path):
    with pytest.raises(DatasetError, match="unknown npz dataset 'amazon'.*coauthor-cs"):
        load_npz_graph("amazon", tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        load_npz_graph(tmp_path / "nothing.npz")


# ----------------------------------------------------------------------------- generated files

NUM_NODES = 6
# Directed, with a duplicate (0->1 twice via 1->0), a self loop (3->3) and isolated node 5.
SOURCES = np.array([0, 1, 1, 2, 3, 4])
TARGETS = np.array([1, 0, 2, 3, 3, 0])
EXPECTED_UNDIRECTED = {(0, 1), (1, 2), (2, 3), (0, 4)}
FEATURES = np.array([[1, 0, 3], [0, 0, 0], [2, 2, 0], [0, 1, 0], [4, 0, 4], [0, 0, 5]], dtype=np.float32)
LABELS = np.array([0, 2, 1, -1, 2, 0])


def small_adjacency():
    return sp.csr_matrix((np.ones(len(SOURCES)), (SOURCES, TARGETS)), shape=(NUM_NODES, NUM_NODES))


def one_hot(labels, num_classes=3):
    matrix = np.zeros((len(labels), num_classes))
    labelled = labels >= 0
    matrix[np.flatnonzero(labelled), labels[labelled]] = 1
    return matrix


def assert_small_graph(graph, name):
    assert graph.name == name and graph.num_nodes == NUM_NODES and graph.num_classes == 3
    assert graph.train_indices is None and graph.val_indices is None and graph.test_indices is None
    assert graph.labels.dtype == torch.int64 and graph.labels.tolist() == LABELS.tolist()
    assert graph.node_features.dtype == torch.float32 and graph.node_features.shape == FEATURES.shape
    row_sums = FEATURES.sum(axis=1, keepdims=True)
    expected = np.divide(FEATURES, row_sums, out=np.zeros_like(FEATURES), where=row_sums != 0)
    torch.testing.assert_close(graph.node_features, torch.from_numpy(expected))
    assert_clean_edges(graph)
    source, target = graph.edge_index.tolist()
    undirected = {(min(s, t), max(s, t)) for s, t in zip(source, target) if s != t}
    assert undirected == EXPECTED_UNDIRECTED


@pytest.mark.parametrize("sparse_features", [True, False], ids=["attr_csr", "attr_matrix"])
@pytest.mark.parametrize("label_layout", ["ids", "one_hot_dense", "one_hot_sparse"])
def test_save_npz_graph_round_trip(tmp_path, sparse_features, label_layout):
    features = sp.csr_matrix(FEATURES) if sparse_features else FEATURES
    labels = {"ids": LABELS, "one_hot_dense": one_hot(LABELS),
              "one_hot_sparse": sp.csr_matrix(one_hot(LABELS))}[label_layout]
    path = save_npz_graph(tmp_path / "small.npz", small_adjacency(), features, labels, class_names=["a", "b", "c"])
    with np.load(path) as archive:
        assert ("attr_data" in archive.files) == sparse_features
        assert ("attr_matrix" in archive.files) == (not sparse_features)
        assert ("labels" in archive.files) == (label_layout == "ids")
        assert list(archive["class_names"]) == ["a", "b", "c"]
    assert_small_graph(load_npz_graph(path), "small")


def arrays_by_hand(sparse_features=True, label_ids=True):
    adjacency = small_adjacency()
    arrays = {"adj_data": adjacency.data, "adj_indices": adjacency.indices, "adj_indptr": adjacency.indptr,
              "adj_shape": np.array(adjacency.shape)}
    if sparse_features:
        attributes = sp.csr_matrix(FEATURES)
        arrays.update(attr_data=attributes.data, attr_indices=attributes.indices, attr_indptr=attributes.indptr,
                      attr_shape=np.array(attributes.shape))
    else:
        arrays["attr_matrix"] = FEATURES
    if label_ids:
        arrays["labels"] = LABELS
    else:
        labels = sp.csr_matrix(one_hot(LABELS))
        arrays.update(labels_data=labels.data, labels_indices=labels.indices, labels_indptr=labels.indptr,
                      labels_shape=np.array(labels.shape))
    return arrays


@pytest.mark.parametrize("sparse_features", [True, False], ids=["attr_csr", "attr_matrix"])
@pytest.mark.parametrize("label_ids", [True, False], ids=["labels", "labels_csr"])
def test_file_written_by_hand_with_np_savez(tmp_path, sparse_features, label_ids):
    path = tmp_path / "by_hand.npz"
    np.savez(path, **arrays_by_hand(sparse_features, label_ids))
    assert_small_graph(load_npz_graph(str(path)), "by_hand")  # a str path works as well as a Path


def test_feature_preprocessing_switches(tmp_path):
    path = save_npz_graph(tmp_path / "raw.npz", small_adjacency(), FEATURES, LABELS)
    raw = load_npz_graph(path, normalise_features=False)  # your own file: values kept, not binarised
    torch.testing.assert_close(raw.node_features, torch.from_numpy(FEATURES))
    binary = load_npz_graph(path, normalise_features=False, binarise_features=True)
    torch.testing.assert_close(binary.node_features, torch.from_numpy((FEATURES != 0).astype(np.float32)))
    assert load_npz_graph(path).num_classes == 3  # no class_names: largest id + 1


def test_negative_features_are_kept_as_they_are_not_scaled_as_counts(tmp_path):
    signed = FEATURES - FEATURES.mean()  # (rows that sum to about zero: scaling them to sum 1 would blow them up)
    path = save_npz_graph(tmp_path / "signed.npz", small_adjacency(), signed, LABELS)
    with pytest.warns(UserWarning, match="signed.npz: features with negative values are kept as they are"):
        loaded = load_npz_graph(path)
    torch.testing.assert_close(loaded.node_features, torch.from_numpy(signed.astype(np.float32)))


# ----------------------------------------------------------------------------- malformed files

def break_missing_key(arrays):
    del arrays["adj_indptr"]


def break_float_indices(arrays):
    arrays["adj_indices"] = arrays["adj_indices"].astype(np.float64)


def break_out_of_range_index(arrays):
    arrays["attr_indices"] = arrays["attr_indices"].copy()
    arrays["attr_indices"][-1] = FEATURES.shape[1]


def break_non_square(arrays):
    arrays["adj_shape"] = np.array([NUM_NODES, NUM_NODES + 1])


def break_label_length(arrays):
    arrays["labels"] = LABELS[:-1]


def break_pickled_labels(arrays):
    arrays["labels"] = np.array([0, "two", 1, None, 2, 0], dtype=object)


def break_decreasing_indptr(arrays):
    arrays["adj_indptr"] = arrays["adj_indptr"][::-1].copy()


def break_feature_rows(arrays):
    arrays["attr_shape"] = np.array([NUM_NODES + 1, FEATURES.shape[1]])
    arrays["attr_indptr"] = np.append(arrays["attr_indptr"], arrays["attr_indptr"][-1])


def break_nan_feature(arrays):
    arrays["attr_data"] = arrays["attr_data"].copy()
    arrays["attr_data"][0] = np.nan


def break_float_labels(arrays):
    arrays["labels"] = LABELS.astype(np.float32)


@pytest.mark.parametrize("break_file, what", [
    (break_missing_key, "no array 'adj_indptr'"),
    (break_float_indices, "adj_indices must be a 1-D integer array"),
    (break_out_of_range_index, r"attr_indices must lie in \[0, 3\)"),
    (break_non_square, "must be square"),
    (break_label_length, "5 labels but the graph has 6 nodes"),
    (break_pickled_labels, "'labels' cannot be read without pickle"),
    (break_decreasing_indptr, "adj_indptr must start at 0, never decrease"),
    (break_feature_rows, "features have 7 rows but the graph has 6 nodes"),
    (break_nan_feature, "NaN or infinite"),
    (break_float_labels, "labels must be a 1-D integer array"),
], ids=lambda value: value.__name__.removeprefix("break_") if callable(value) else None)
def test_malformed_file_is_refused_by_name(tmp_path, break_file, what):
    arrays = arrays_by_hand()
    break_file(arrays)
    path = tmp_path / "broken.npz"
    np.savez(path, **arrays)  # np.savez pickles object arrays, as a hostile file would
    with pytest.raises(DatasetError, match=what) as error:
        load_npz_graph(path)
    assert str(path) in str(error.value)


def test_several_labels_on_one_node_are_refused(tmp_path):
    labels = one_hot(LABELS)
    labels[4, 0] = 1
    path = save_npz_graph(tmp_path / "multi.npz", small_adjacency(), FEATURES, labels)
    with pytest.raises(DatasetError, match="node 4 .* several labels") as error:
        load_npz_graph(path)
    assert str(path) in str(error.value)


def test_not_a_zip_and_a_damaged_zip(tmp_path):
    text = tmp_path / "graph.npz"
    text.write_text("adj_data,adj_indices\n1,2\n")
    with pytest.raises(DatasetError, match="not an .npz archive") as error:
        load_npz_graph(text)
    assert str(text) in str(error.value)

    good = save_npz_graph(tmp_path / "good.npz", small_adjacency(), FEATURES, LABELS)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DatasetError, match="truncated.npz"):
        load_npz_graph(truncated)

    damaged = tmp_path / "damaged.npz"
    content = bytearray(good.read_bytes())
    start = content.index(b"adj_indices.npy") + 40  # inside that member's compressed bytes
    content[start:start + 8] = b"\xff" * 8
    damaged.write_bytes(bytes(content))
    with pytest.raises(DatasetError, match="damaged.npz.*corrupt"):
        load_npz_graph(damaged)


def test_a_file_named_like_a_dataset_keeps_its_suffix_and_its_own_class_names(cora_npz_dir, tmp_path, monkeypatch):
    """npz/cora.npz is not Planetoid's Cora: its runs and figures say cora.npz, its classes are named by the file
    (alphabetical, not Planetoid's order), and a path relative to the data folder finds it."""
    from utils.datasets.catalog import load_graph
    from utils.runs.run import default_run_name

    monkeypatch.chdir(tmp_path)  # npz/cora.npz is not here: it is found in the data folder
    graph = load_graph("npz/cora.npz", cora_npz_dir)
    assert graph.name == "cora.npz" and graph.class_names[:2] == ["Case_Based", "Genetic_Algorithms"]
    assert default_run_name(dict(dataset_name="npz/cora.npz", attention_type="gat", seed=0)).startswith(
        "cora.npz_gat_seed0_")
    assert default_run_name(dict(dataset_name="/data/my_graph.npz", attention_type="gat", seed=1)).startswith(
        "my-graph_gat_seed1_")  # (underscores separate the name's parts)
    with pytest.raises(DatasetError, match="here or in the data folder") as error:
        load_graph("npz/missing.npz", cora_npz_dir)
    assert "'cora' is Planetoid's Cora" in str(error.value)
