"""The seed tables and the training fingerprints, seed by seed: what a refactor must leave unchanged, to the bit.

    python -m benchmarks.seed_tables --tables --output tests/baselines/seed_tables.json        # 12 min on 2 cores
    python -m benchmarks.seed_tables --fingerprints --output tests/baselines/fingerprints.json  # 5 s
    python -m benchmarks.seed_tables --tables --check tests/baselines/seed_tables.json         # rerun and compare

The tables: full runs as training_script_cora.py and training_script_ppi.py train them (early stopping, the
paper's settings) of Cora's public split with GAT (seeds 0-9), GATv2 (0-9) and neighbour sampling (0-9), Cora's
random splits (split seeds 0-4, init seeds 0-1) and generated PPI-format data (seeds 0-2). Each run records its
test metric, the epoch of the kept model and a hash of the kept weights.

The fingerprints: a few epochs of each setup (and of IMP4), each recording the loss history and a hash of the
weights, and a few Adam steps of every layer type, GAT and GATv2, with and without edge features, on a small
random graph; tests/test_fingerprints.py recomputes them in seconds.

Everything runs on the CPU with one thread: floating-point sums are then done in one order, so the same code,
torch build and CPU give the same bits. The JSON records that environment; a check on another one compares the
numbers to a tolerance instead of the bits (another CPU's vector units may round a sum differently).
"""

import argparse
import contextlib
import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

# The setups of the tables: name -> (trainer, settings), each run once per seed of SEEDS[name].
CORA = dict(dataset_name="cora")
TABLE_SETUPS = {
    "cora_gat": CORA,
    "cora_gatv2": dict(CORA, attention_type="gatv2"),
    "cora_sampled": dict(CORA, fanouts=[10, 10], batch_size=256),
    "cora_random_splits": dict(CORA, split="random"),
    "ppi_generated": dict(dataset_name="ppi", num_of_epochs=60),
}
TABLE_SEEDS = {"cora_gat": [(0, s) for s in range(10)], "cora_gatv2": [(0, s) for s in range(10)],
               "cora_sampled": [(0, s) for s in range(10)],
               "cora_random_splits": [(split, s) for split in range(5) for s in range(2)],
               "ppi_generated": [(0, s) for s in range(3)]}

# Fingerprints: a few epochs each (no early stopping reached), seed 0.
FINGERPRINT_SETUPS = {
    "cora_gat": dict(CORA, num_of_epochs=8),
    "cora_gatv2": dict(CORA, attention_type="gatv2", num_of_epochs=8),
    "cora_sampled": dict(CORA, fanouts=[10, 10], batch_size=256, num_of_epochs=2),
    "cora_random_split": dict(CORA, split="random", split_seed=3, num_of_epochs=8),
    "cora_imp4": dict(CORA, layer_type="IMP4", num_of_epochs=3),
    "ppi_generated": dict(dataset_name="ppi", num_of_epochs=3),
    "ppi_generated_gatv2": dict(dataset_name="ppi", attention_type="gatv2", num_of_epochs=3),
}
# The generated PPI-format data both use (utils/datasets/ppi_synthetic.py)
PPI_DATA = dict(graphs_per_split=(20, 2, 2), nodes_per_graph=(80, 120), seed=0)
FINGERPRINT_PPI_DATA = dict(graphs_per_split=(4, 2, 2), nodes_per_graph=(40, 60), seed=0)


def environment():
    """What decides the bits besides the code: the torch build, the CPU's vector unit, one thread."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine(), "threads": 1}


def weights_hash(model):
    """The first 16 hex digits of SHA-256 over every parameter and buffer, in state_dict order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def history_hash(history):
    """A hash of every number of the history (repr keeps every bit of a float)."""
    return hashlib.sha256(repr([sorted(entry.items()) for entry in history]).encode()).hexdigest()[:16]


@contextlib.contextmanager
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train(settings, seed, split_seed, data_dir, ppi_dir):
    """One run on the CPU with nothing saved: (results, history, model)."""
    from utils.training.many_graphs import train_many_graphs
    from utils.training.one_graph import train_one_graph
    config = dict(settings, seed=seed, console_log_freq=0, checkpoint_freq=0, save_binary=False,
                  last_checkpoint_seconds=None, force_cpu=True, should_test=True)
    if config["dataset_name"] == "ppi":
        config.update(data_dir=str(ppi_dir), progress_bar=False)
        del config["dataset_name"]
        result = train_many_graphs(config, log=lambda *_: None)
    else:
        if config.get("split") == "random":
            config.setdefault("split_seed", split_seed)
        result = train_one_graph(dict(config, data_dir=data_dir), log=lambda *_: None)
    return result, result.pop("history"), result.pop("model")


def make_ppi_data(folder, **settings):
    from utils.datasets.ppi_synthetic import write_synthetic_ppi
    write_synthetic_ppi(Path(folder) / "ppi", **settings)
    return Path(folder)


def compute_tables(data_dir, only=None, seeds=None, log=print):
    """{setup: [row per (split seed, seed)]}; only: just these setups; seeds: just these rows of each."""
    tables = {}
    with tempfile.TemporaryDirectory() as temporary, one_thread():
        ppi_dir = make_ppi_data(temporary, **PPI_DATA)
        for name, settings in TABLE_SETUPS.items():
            if only and name not in only:
                continue
            rows = []
            for index, (split_seed, seed) in enumerate(TABLE_SEEDS[name]):
                if seeds is not None and index not in seeds:
                    continue
                result, _, model = train(settings, seed, split_seed, data_dir, ppi_dir)
                metric = "test_micro_f1" if "test_micro_f1" in result else "test_acc"
                rows.append({"split_seed": split_seed, "seed": seed, metric: result[metric],
                             "kept_epoch": result["best_epoch"], "epochs": result["epochs"],
                             "weights": weights_hash(model)})
                log(f"{name} split {split_seed} seed {seed}: {metric} {result[metric]:.4f}, kept epoch "
                    f"{result['best_epoch']}, weights {rows[-1]['weights']}")
            tables[name] = rows
    return tables


def compute_fingerprints(data_dir, only=None, log=print):
    fingerprints = {}
    with tempfile.TemporaryDirectory() as temporary, one_thread():
        ppi_dir = make_ppi_data(temporary, **FINGERPRINT_PPI_DATA)
        for name, settings in FINGERPRINT_SETUPS.items():
            if only and name not in only:
                continue
            result, history, model = train(settings, 0, 0, data_dir, ppi_dir)
            fingerprints[name] = {"history": history_hash(history), "weights": weights_hash(model),
                                  "train_loss": [entry["train_loss"] for entry in history]}
            log(f"{name}: history {fingerprints[name]['history']}, weights {fingerprints[name]['weights']}")
        fingerprints["layers"] = layer_fingerprints()
        log(f"layers: {fingerprints['layers']}")
    return fingerprints


def layer_fingerprints():
    """Every layer type, GAT and GATv2, without and with edge features: a few Adam steps (with dropout) on a fixed
    random graph of 80 nodes; {"IMP1 gat": weights hash, "IMP1 gat edge": ..., ...}."""
    from models import GAT, LayerType, gat_edge_index
    hashes = {}
    generator = torch.Generator().manual_seed(0)
    num_nodes = 80
    edges = torch.randint(0, num_nodes, (2, 400), generator=generator)
    edge_index, edge_attr = gat_edge_index(edges, num_nodes, edge_attr=torch.rand(400, 3, generator=generator))
    features = torch.randn(num_nodes, 10, generator=generator)
    labels = torch.randint(0, 4, (num_nodes,), generator=generator)
    for layer_type in LayerType:
        for attention_type in ("gat", "gatv2"):
            for edge_dim in (None, 3):
                torch.manual_seed(0)
                model = GAT(2, [4, 2], [10, 8, 4], dropout=0.3, attention_type=attention_type, edge_dim=edge_dim,
                            layer_type=layer_type)
                optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
                for _ in range(4):
                    optimizer.zero_grad()
                    logits = model(features, edge_index, edge_attr if edge_dim else None)
                    torch.nn.functional.cross_entropy(logits, labels).backward()
                    optimizer.step()
                hashes[f"{layer_type.name} {attention_type}{' edge' if edge_dim else ''}"] = weights_hash(model)
    return hashes


def compare(expected, actual, same_environment):
    """The differences between two JSON documents of tables or fingerprints, one line each ([] if none). Outside
    the recorded environment hashes are not compared, and numbers only to 1e-4 (relative)."""
    differences = []

    def walk(where, a, b):
        if isinstance(a, dict) and isinstance(b, dict):
            for key in a.keys() | b.keys():
                if key in a and key in b:
                    walk(f"{where}.{key}", a[key], b[key])
                else:
                    differences.append(f"{where}.{key}: only in {'the record' if key in a else 'this run'}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for index, (x, y) in enumerate(zip(a, b)):
                walk(f"{where}[{index}]", x, y)
        elif isinstance(a, float) and isinstance(b, float) and not same_environment:
            if abs(a - b) > 1e-4 * max(1.0, abs(a)):
                differences.append(f"{where}: recorded {a!r}, now {b!r}")
        elif isinstance(a, str) and isinstance(b, str) and len(a) == 16 and not same_environment:
            pass  # a hash: bits differ across environments
        elif a != b:
            differences.append(f"{where}: recorded {a!r}, now {b!r}")
    walk("", expected, actual)
    return differences


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--tables", action="store_true", help="the full seed tables (minutes)")
    what.add_argument("--fingerprints", action="store_true", help="a few epochs of every setup (seconds)")
    parser.add_argument("--only", nargs="+", default=None, help="just these setups")
    parser.add_argument("--data_dir", default=None, help="where Cora is (default: $GAT_DATA_DIR, then data/)")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--output", help="write the JSON here")
    action.add_argument("--check", help="compare with this JSON; exit 1 on any difference")
    args = parser.parse_args(argv)
    compute = compute_tables if args.tables else compute_fingerprints
    results = compute(args.data_dir, args.only)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps({"environment": environment(), "results": results}, indent=1) + "\n")
        print(f"wrote {args.output}")
        return 0
    recorded = json.loads(Path(args.check).read_text())
    expected = recorded["results"]
    if args.only:
        expected = {name: value for name, value in expected.items() if name in args.only or name == "layers"}
    differences = compare(expected, results, recorded["environment"] == environment())
    print("\n".join(differences) or f"identical to {args.check}"
          + ("" if recorded["environment"] == environment() else " (to 1e-4: another environment)"))
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
