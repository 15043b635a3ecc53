"""Profiling: time and peak memory of the four GAT implementations, and of sparse matrix formats.

Peak memory is measured for real: CUDA reports torch.cuda.max_memory_allocated; on the CPU each
measurement runs in a fresh child process whose peak resident set size (Linux VmHWM) is reset after
setup, so imports and data loading do not count, only the work being profiled.
"""

import collections
import json
import multiprocessing
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from models import Graph
from utils import paths
from utils.datasets.graph import row_normalise, sparsify_if_mostly_zero
from utils.datasets.planetoid import load_planetoid
from utils.plumbing.files import write_json
from utils.progress import progress_bar
from utils.training.one_graph import CITATION_ARCHITECTURE
from utils.training.setup import build_model, make_optimizer

# ----------------------------------------------------------------------------- host-device synchronisations

class HostSyncCounter(TorchDispatchMode):
    """Counts the ops that make the host wait for the device, as they run (a TorchDispatchMode, so it works on the
    CPU too, where nothing actually waits): reading a value back (`.item()`, `bool()`, `int()`), ops whose output
    size depends on the data (nonzero, unique, bincount without a known size, repeat_interleave without
    output_size), and segment_reduce with its checks on (they read the lengths back).

        with HostSyncCounter() as syncs:
            loss = model(x, edge_index).sum(); loss.backward()
        syncs.counts   # Counter({op name: calls}); empty: the step never waits for the device

    `.tolist()` and `.cpu()` copy whole tensors back without passing through an op it can see; on a GPU,
    torch.cuda.set_sync_debug_mode("warn") sees those too (benchmarks/gpu_check.py)."""

    ALWAYS = {"_local_scalar_dense", "nonzero", "unique", "_unique", "_unique2", "unique_dim", "unique_consecutive",
              "bincount", "masked_select", "is_nonzero", "equal"}

    def __init__(self):
        super().__init__()
        self.counts = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name in self.ALWAYS:
            self.counts[name] += 1
        elif name == "segment_reduce" and not kwargs.get("unsafe", False):
            self.counts["segment_reduce (checked)"] += 1
        elif name == "repeat_interleave" and kwargs.get("output_size") is None:
            self.counts["repeat_interleave (no output_size)"] += 1
        return func(*args, **kwargs)


# ----------------------------------------------------------------------------- peak memory in a child process

def run_isolated(setup, setup_args, num_steps, device_name="cpu", num_threads=None):
    """Call setup(*setup_args) -> step in a fresh process, then step() num_steps times there.

    Returns {"seconds": time of the steps, "peak_bytes": peak memory above the level after setup}.
    setup must be a module-level function (it is pickled by reference).
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_isolated_child,
                              args=(setup, setup_args, num_steps, device_name, num_threads or torch.get_num_threads(),
                                    queue))
    process.start()
    result = queue.get()  # before join: a large queued result would otherwise block the child's exit
    process.join()
    if isinstance(result, Exception):
        raise result
    return result


def _isolated_child(setup, setup_args, num_steps, device_name, num_threads, queue):
    try:
        torch.set_num_threads(num_threads)
        device = torch.device(device_name)
        step = setup(*setup_args)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            baseline = torch.cuda.memory_allocated()
        else:
            reset_peak_rss()
            baseline = memory_status("VmRSS")
        start = time.perf_counter()
        for _ in range(num_steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else memory_status("VmHWM")
        queue.put({"seconds": seconds, "peak_bytes": peak - baseline})
    except Exception as error:  # report it to the parent instead of dying silently
        queue.put(RuntimeError(f"profiling child failed: {type(error).__name__}: {error}"))


def reset_peak_rss():
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def memory_status(field):
    """VmRSS / VmHWM of this process in bytes (Linux /proc)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


# ----------------------------------------------------------------------------- the three implementations

def _cora_training_step(layer_type, device_name, data_dir):
    """Setup for run_isolated: the paper's Cora model of one layer type; returns one training epoch."""


    device = torch.device(device_name)
    data = load_planetoid("cora", data_dir).to(device)
    features = sparsify_if_mostly_zero(data.node_features)
    graph = Graph(data.edge_index, data.num_nodes)
    model = build_model(CITATION_ARCHITECTURE, data.node_features.shape[1], data.num_classes, layer_type).to(device)
    optimizer = make_optimizer(model, 5e-3, 5e-4)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        logits = model(features, graph)
        loss_fn(logits[data.train_indices], data.labels[data.train_indices]).backward()
        optimizer.step()
    return step  # not warmed up: the first epoch's allocations (e.g. IMP3's per-graph index) count too


def profile_gat(layer_types=("IMP1", "IMP2", "IMP3", "IMP4"), num_of_epochs=10, data_dir=None, device=None,
                store_cache=False, skip_if_profiling_info_cached=False, log=print):
    """Time and peak memory of `num_of_epochs` Cora training epochs for each layer type.

    Returns {layer_type: {"seconds", "ms_per_epoch", "peak_bytes"}} and prints a table. With
    store_cache the results go to data/profiling/*.json; skip_if_profiling_info_cached reuses them.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    cache_path = paths.PROFILING_CACHE_DIR / f"profile_gat_cora_{device}_{num_of_epochs}_epochs.json"
    if skip_if_profiling_info_cached and cache_path.exists():
        results = json.loads(cache_path.read_text())
        log(f"(cached results from {cache_path})")
    else:
        results = {}
        with progress_bar(layer_types, desc="profiling", unit="layer type") as bar:
            for layer_type in bar:
                bar.set_postfix_str(f"{layer_type}, {num_of_epochs} epochs")
                measured = run_isolated(_cora_training_step, (layer_type, device, data_dir), num_of_epochs, device)
                measured["ms_per_epoch"] = 1000 * measured["seconds"] / num_of_epochs
                results[layer_type] = measured
        if store_cache:
            write_json(cache_path, results)
    log(f"\nCora, {num_of_epochs} training epochs, device {device}:\n")
    log("| layer type | ms per epoch | peak memory (MiB) |\n|---|---|---|")
    for layer_type, measured in results.items():
        log(f"| {layer_type} | {measured['ms_per_epoch']:.1f} | {measured['peak_bytes'] / 2 ** 20:.1f} |")
    return results


# ----------------------------------------------------------------------------- sparse matrix formats

def _storage_bytes(matrix):
    if isinstance(matrix, np.ndarray):
        return matrix.nbytes
    if sp.isspmatrix_lil(matrix) or isinstance(matrix, sp.lil_array):
        # Python lists of ints/floats: count the objects, not just the array headers.
        return sum(8 * (len(r) + len(d)) + 56 * 2 for r, d in zip(matrix.rows, matrix.data))
    return sum(getattr(matrix, attr).nbytes for attr in ("data", "indices", "indptr", "row", "col")
               if hasattr(matrix, attr))


def profile_sparse(features, num_repeats=20, seed=0, log=print):
    """Row-normalising a feature matrix and a sparse x dense product, in COO, CSR, CSC, LIL and dense.

    features: a numpy array or scipy matrix [N, F]. Reports the median time of each operation, the
    matrix's storage and the peak memory the operation allocated (tracemalloc sees numpy/scipy).
    """
    dense = features.toarray() if sp.issparse(features) else np.asarray(features)
    other = np.random.default_rng(seed).standard_normal((dense.shape[1], 64)).astype(np.float32)
    formats = {"coo": sp.coo_matrix, "csr": sp.csr_matrix, "csc": sp.csc_matrix, "lil": sp.lil_matrix,
               "dense": np.asarray}
    results = {}
    for name, convert in formats.items():
        matrix = convert(dense)
        row = {"storage_bytes": _storage_bytes(matrix)}
        for operation, run in (("row_normalise", lambda: row_normalise(matrix)), ("product", lambda: matrix @ other)):
            times = []
            for _ in range(num_repeats):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            tracemalloc.start()
            run()
            row[f"{operation}_peak_bytes"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            row[f"{operation}_ms"] = 1000 * float(np.median(times))
        results[name] = row
    density = np.count_nonzero(dense) / dense.size
    log(f"\n{dense.shape[0]} x {dense.shape[1]} matrix, {100 * density:.2f}% non-zero; product with a dense "
        f"{other.shape[0]} x {other.shape[1]}:\n")
    log("| format | storage (KiB) | row-normalise ms | row-normalise peak (KiB) | product ms | product peak (KiB) |")
    log("|---|---|---|---|---|---|")
    for name, row in results.items():
        log(f"| {name} | {row['storage_bytes'] / 1024:.0f} | {row['row_normalise_ms']:.2f} | "
            f"{row['row_normalise_peak_bytes'] / 1024:.0f} | {row['product_ms']:.2f} | "
            f"{row['product_peak_bytes'] / 1024:.0f} |")
    return results
