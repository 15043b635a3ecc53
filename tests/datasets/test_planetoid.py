"""The Planetoid loader: Cora's known facts, the Citeseer quirk, downloads, checksums, safe unpickling."""

import collections
import io
import pickle
import shutil
import urllib.error

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from utils import paths
from utils.datasets import download as data_loading
from utils.datasets import planetoid
from utils.datasets.download import DatasetError, resolve_data_dir
from utils.datasets.planetoid import load_planetoid


def test_cora_known_facts(cora):
    assert cora.node_features.shape == (2708, 1433)
    assert cora.num_classes == 7 and set(cora.labels.tolist()) == set(range(7))
    assert (len(cora.train_indices), len(cora.val_indices), len(cora.test_indices)) == (140, 500, 1000)
    splits = [set(s.tolist()) for s in (cora.train_indices, cora.val_indices, cora.test_indices)]
    assert not (splits[0] & splits[1]) and not (splits[0] & splits[2]) and not (splits[1] & splits[2])

    source, target = cora.edge_index
    is_loop = source == target
    assert cora.edge_index.shape == (2, 10556 + 2708)
    assert int(is_loop.sum()) == 2708 and set(source[is_loop].tolist()) == set(range(2708))
    assert int((~is_loop).sum()) // 2 == 5278  # undirected edges
    keys = set((source * 2708 + target).tolist())
    assert len(keys) == cora.edge_index.shape[1]  # no duplicates
    assert keys == set((target * 2708 + source).tolist())  # symmetric

    row_sums = cora.node_features.sum(dim=1)
    torch.testing.assert_close(row_sums, torch.ones(2708))


def test_data_dir_precedence(monkeypatch, tmp_path):
    (tmp_path / "env").mkdir(), (tmp_path / "flag").mkdir()
    monkeypatch.setenv("GAT_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    monkeypatch.delenv("GAT_DATA_DIR")
    assert resolve_data_dir() == paths.DATA_DIR


def test_a_named_data_dir_that_does_not_exist_is_one_line_that_says_so(tmp_path, capsys):
    import training_script_cora
    missing = tmp_path / "typo"
    with pytest.raises(SystemExit) as exit_info:
        training_script_cora.main(["--data_dir", str(missing), "--num_of_epochs", "1"])
    assert str(exit_info.value.code) == (
        f"error: --data_dir {missing} does not exist: point it at the folder that holds the datasets (planetoid/, "
        f"npz/, ppi/, ...), or create it first to download them into it")
    assert not missing.exists()  # nothing made where the typo points


def copy_cora(cora_data_dir, tmp_path):
    target = tmp_path / "data" / "planetoid"
    target.mkdir(parents=True)
    for path in (cora_data_dir / "planetoid").glob("ind.cora.*"):
        shutil.copy(path, target / path.name)
        (target / path.name).chmod(0o644)
    return tmp_path / "data"


def test_corrupt_file_is_named_and_never_unpickled(cora_data_dir, tmp_path):
    data_dir = copy_cora(cora_data_dir, tmp_path)
    with open(data_dir / "planetoid" / "ind.cora.graph", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x00")
    with pytest.raises(DatasetError, match=r"ind\.cora\.graph.*SHA-256"):
        load_planetoid("cora", data_dir)


def refuse_network(*args, **kwargs):
    raise urllib.error.URLError("no network in this test")


def test_missing_file_without_network_says_where_to_put_it(cora_data_dir, tmp_path, monkeypatch):
    data_dir = copy_cora(cora_data_dir, tmp_path)
    (data_dir / "planetoid" / "ind.cora.tx").unlink()
    monkeypatch.setattr(data_loading.urllib.request, "urlopen", refuse_network)
    with pytest.raises(DatasetError) as error:
        load_planetoid("cora", data_dir)
    message = str(error.value)
    assert "ind.cora.tx" in message and planetoid.PLANETOID_URL in message
    assert f"Missing in {data_dir / 'planetoid'}: ind.cora.tx." in message and "\n" not in message
    assert not (data_dir / "planetoid" / "ind.cora.tx").exists()


def test_all_missing_files_are_named_in_one_message(cora_data_dir, tmp_path, monkeypatch):
    data_dir = copy_cora(cora_data_dir, tmp_path)
    for part in ("tx", "ty", "graph"):
        (data_dir / "planetoid" / f"ind.cora.{part}").unlink()
    monkeypatch.setattr(data_loading.urllib.request, "urlopen", refuse_network)
    with pytest.raises(DatasetError) as error:
        load_planetoid("cora", data_dir)
    assert "Missing in" in str(error.value) and "ind.cora.tx, ind.cora.ty, ind.cora.graph" in str(error.value)
    assert str(error.value).startswith("Could not download ind.cora.tx from ") and "\n" not in str(error.value)
    with pytest.raises(DatasetError, match="ind.cora.tx, ind.cora.ty, ind.cora.graph"):
        load_planetoid("cora", data_dir, download=False)


def test_data_dir_one_level_off_is_understood_or_corrected(cora_data_dir, tmp_path, monkeypatch):
    data_dir = copy_cora(cora_data_dir, tmp_path)
    monkeypatch.setattr(data_loading.urllib.request, "urlopen", refuse_network)
    # One level too deep: the folder that holds ind.cora.* itself.
    assert load_planetoid("cora", data_dir / "planetoid").num_nodes == 2708
    # One level too shallow: a "did you mean", not a download attempt.
    with pytest.raises(DatasetError, match=f"did you mean --data_dir {data_dir}"):
        load_planetoid("cora", tmp_path)


def test_published_hashes_are_pinned_except_pubmed_allx():
    for dataset in ("cora", "citeseer", "pubmed"):
        for part in planetoid.RAW_PARTS:
            name = f"ind.{dataset}.{part}"
            assert (name in planetoid.KNOWN_SHA256) == (name != "ind.pubmed.allx"), name
            assert name == "ind.pubmed.allx" or len(planetoid.KNOWN_SHA256[name]) == 64


class FakeResponse(io.BytesIO):
    headers = {}


def test_download_is_verified_before_it_is_kept(cora_data_dir, tmp_path, monkeypatch):
    data_dir = copy_cora(cora_data_dir, tmp_path)
    good_bytes = (data_dir / "planetoid" / "ind.cora.y").read_bytes()
    (data_dir / "planetoid" / "ind.cora.y").unlink()

    monkeypatch.setattr(data_loading.urllib.request, "urlopen", lambda url, timeout: FakeResponse(b"evil" + good_bytes))
    with pytest.raises(DatasetError, match="corrupt"):
        load_planetoid("cora", data_dir)
    assert not list((data_dir / "planetoid").glob("*ind.cora.y*"))  # no partial or temp file left

    requested = []
    monkeypatch.setattr(data_loading.urllib.request, "urlopen",
                        lambda url, timeout: requested.append(url) or FakeResponse(good_bytes))
    assert load_planetoid("cora", data_dir).num_nodes == 2708
    assert requested == [f"{planetoid.PLANETOID_URL}/ind.cora.y"]


class Exploit:
    def __reduce__(self):
        return (shutil.rmtree, ("/nonexistent-path-for-test",))


def test_unpickler_refuses_anything_but_planetoid_types(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Exploit(), protocol=2))
    with pytest.raises(DatasetError, match="refusing to load shutil.rmtree"):
        planetoid._unpickle(path)


def write_planetoid_files(folder, name, *, num_train=6, num_val=500, num_test=8, num_features=5, num_classes=3,
                          missing_test_ids=()):
    """Write a small graph in the raw Planetoid format (what the real files hold, pickled)."""
    rng = np.random.default_rng(0)
    num_all = num_train + num_val + 4  # allx: labelled training nodes, validation nodes, a few more
    test_ids = np.arange(num_all, num_all + num_test + len(missing_test_ids))
    present = np.array([i for i in test_ids if i not in set(missing_test_ids)])
    shuffled = rng.permutation(present)

    def features(rows):
        return sp.csr_matrix((rng.random((rows, num_features)) < 0.5).astype(np.float32))

    def one_hot(rows):
        return np.eye(num_classes, dtype=np.int32)[rng.integers(0, num_classes, rows)]

    allx, ally = features(num_all), one_hot(num_all)
    parts = {"x": allx[:num_train], "y": ally[:num_train], "allx": allx, "ally": ally,
             "tx": features(len(shuffled)), "ty": one_hot(len(shuffled))}
    graph = collections.defaultdict(list)
    total = num_all + len(test_ids)
    for node in range(total):
        graph[node].append((node + 1) % total)
    for node in missing_test_ids:
        graph[node] = []  # isolated
    parts["graph"] = graph
    folder.mkdir(parents=True, exist_ok=True)
    for part, value in parts.items():
        (folder / f"ind.{name}.{part}").write_bytes(pickle.dumps(value, protocol=2))
    (folder / f"ind.{name}.test.index").write_text("\n".join(str(i) for i in shuffled) + "\n")
    return parts, shuffled


def test_citeseer_isolated_test_nodes_get_zero_features_and_no_label(tmp_path, monkeypatch):
    parts, test_ids = write_planetoid_files(tmp_path / "planetoid", "citeseer", missing_test_ids=(515, 517))
    monkeypatch.setattr(planetoid, "KNOWN_SHA256", {})
    data = load_planetoid("citeseer", tmp_path, download=False)
    assert data.num_nodes == 510 + 10
    assert data.labels[515] == -1 and data.labels[517] == -1
    assert data.node_features[515].abs().sum() == 0
    assert sorted(data.test_indices.tolist()) == sorted(test_ids.tolist())
    assert (data.labels[data.test_indices] >= 0).all()
    # The i-th row of tx belongs to the i-th id in test.index (the file's order, not sorted).
    first = int(test_ids[0])
    expected = parts["tx"][0].toarray().ravel()
    torch.testing.assert_close(data.node_features[first], torch.from_numpy(expected / expected.sum()).float())
    assert data.labels[first] == parts["ty"][0].argmax()


def test_unknown_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="unknown Planetoid dataset"):
        load_planetoid("reddit", tmp_path)


def test_citeseer_topic_names_follow_the_papers_per_topic(cora_data_dir):
    """Planetoid's label columns counted (labelled training pool + test nodes) against the LINQS release's papers
    per topic: the names are in the columns' order."""
    files = planetoid.raw_file_paths("citeseer", cora_data_dir, download=False)  # (checksums verified)
    per_column = sum(np.asarray(planetoid._unpickle(files[part])).sum(0) for part in ("ally", "ty"))
    assert per_column.tolist() == [planetoid.CITESEER_CLASS_SIZES[name] for name in planetoid.CITESEER_CLASS_NAMES]
    assert load_planetoid("citeseer", cora_data_dir, download=False).class_names == planetoid.CITESEER_CLASS_NAMES


def test_cora_topic_names_follow_the_npz_releases_named_classes(cora_data_dir):
    """Planetoid's label columns counted against npz/cora.npz (the same papers, its classes named and in another
    order): every column's count belongs to exactly one name, and that name is the column's in CORA_CLASS_NAMES."""
    npz_path = cora_data_dir / "npz" / "cora.npz"
    if not npz_path.exists():
        pytest.skip(f"{npz_path} not found (the npz tests say where to get it)")
    with np.load(npz_path, allow_pickle=False) as release:
        names = [str(name).replace("_", " ").capitalize() for name in release["class_names"]]
        papers_per_name = dict(zip(names, np.bincount(release["labels"]).tolist()))
    files = planetoid.raw_file_paths("cora", cora_data_dir, download=False)  # (checksums verified)
    per_column = sum(np.asarray(planetoid._unpickle(files[part])).sum(0) for part in ("ally", "ty"))
    assert len(set(papers_per_name.values())) == 7  # all different: the counts name the columns
    assert per_column.tolist() == [papers_per_name[name] for name in planetoid.CORA_CLASS_NAMES]
    assert load_planetoid("cora", cora_data_dir, download=False).class_names == planetoid.CORA_CLASS_NAMES
