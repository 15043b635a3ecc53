"""Speed and memory of our four GAT implementations against PyTorch Geometric's GATConv (or GATv2Conv).

    python -m benchmarks.bench_speed                                  # all workloads
    python -m benchmarks.bench_speed --workloads cora --repeats 50
    python -m benchmarks.bench_speed --attention_type gatv2 --workloads cora ppi   # against PyG's GATv2Conv
    python -m benchmarks.bench_speed --workloads scaling --scaling_nodes 10000 100000 1000000
    python -m benchmarks.bench_speed --workloads powerlaw --scaling_nodes 100000 1000000   # hubs of 10^3-10^4 in-edges
    python -m benchmarks.bench_speed --workloads cli           # the user's epoch, through the training script
    python -m benchmarks.bench_speed --workloads cora ppi scaling --implementations IMP3 IMP4 PyG \
        --scaling_implementations IMP3 IMP4 PyG --scaling_nodes 100000        # the sparse-API layer, IMP4

cli: the epoch as the user experiences it. training_script_cora.py (default settings: console line every 100
epochs, the run's last.pth refreshed every 5 s, binary and test at the end; outputs moved to a temporary folder)
and benchmarks/pyg_cora_script.py (PyG's GATConv in an example-style loop with the same bookkeeping) each run
--cli_epochs SHORT and LONG epochs as subprocesses, interleaved, --cli_repeats times. Two estimates of the epoch:
(median LONG run - median SHORT run) / (LONG - SHORT), so start-up, data loading and the final test cancel; and,
steadier because start-up noise never enters it, the script's own clock: both scripts print the seconds since
training began on their console lines at epochs 100, 200, ..., and (t at the last such line - t at epoch 100)
/ (the epochs between them) is taken from every LONG run (median; the clock prints 0.1 s steps, so LONG should
leave a few hundred epochs after epoch 100).

Timing: every model is warmed up, then the models take turns (interleaved) within one process, so a
slow-down of the machine hits all of them alike; we report the median and the 25-75% range.
Peak memory: each model trains a few steps in a fresh child process; we report how far the peak
resident set size (CPU, Linux: VmHWM after resetting it once the data and model are set up) or
torch.cuda.max_memory_allocated (CUDA) rose above the memory in use before the first step.
PyTorch Geometric is a benchmark-only dependency (`pip install torch_geometric`); without it the
PyG rows are skipped.
"""

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from models import GAT, Graph, LayerType
from utils.datasets.graph import sparsify_if_mostly_zero
from utils.plumbing.arguments import positive_int, writable_file
from utils.plumbing.files import write_json
from utils.profiling import run_isolated

IMPLEMENTATIONS = ("IMP1", "IMP2", "IMP3", "IMP4", "PyG")


# ----------------------------------------------------------------------------- workloads

def cora_workload(data_dir=None):
    from utils.datasets.planetoid import load_planetoid
    data = load_planetoid("cora", data_dir)
    return dict(name="cora", features=data.node_features, edge_index=data.edge_index, labels=data.labels,
                loss="ce", train_mask=data.train_indices, eval_nodes=data.val_indices, heads=[8, 1], hidden=[8],
                skip=False, dropout=0.6, out=data.num_classes)


def ppi_workload(nodes_per_graph=2300, avg_degree=30):
    """Two graphs of ~2,300 nodes and ~30 directed edges per node, written and read in the PPI format."""
    from utils.datasets.graph import merge_graphs
    from utils.datasets.ppi import load_ppi
    from utils.datasets.ppi_synthetic import write_synthetic_ppi
    with tempfile.TemporaryDirectory() as folder:
        write_synthetic_ppi(f"{folder}/ppi", graphs_per_split=(2, 1, 1),
                            nodes_per_graph=(nodes_per_graph, nodes_per_graph + 100), avg_degree=avg_degree)
        batch = merge_graphs(load_ppi(folder, download=False)["train"])
    return dict(name="ppi", features=batch.node_features, edge_index=batch.edge_index, labels=batch.labels,
                loss="bce", train_mask=None, heads=[4, 4, 6], hidden=[256, 256], skip=True, dropout=0.0, out=121)


def scaling_workload(num_nodes, avg_degree=10, num_features=64, num_classes=10, seed=0):
    """A random graph: avg_degree random in-edges per node plus self loops, dense features."""
    generator = torch.Generator().manual_seed(seed)
    num_edges = num_nodes * avg_degree
    source = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    target = torch.arange(num_nodes).repeat_interleave(avg_degree)
    loops = torch.arange(num_nodes)
    edge_index = torch.stack([torch.cat([source, loops]), torch.cat([target, loops])])
    return dict(name=f"scaling_{num_nodes}", features=torch.randn(num_nodes, num_features, generator=generator),
                edge_index=edge_index, labels=torch.randint(0, num_classes, (num_nodes,), generator=generator),
                loss="ce", train_mask=None, heads=[8, 1], hidden=[8], skip=False, dropout=0.6, out=num_classes)


def power_law_workload(num_nodes, avg_degree=10, exponent=0.6, num_features=64, num_classes=10, seed=0):
    """A random graph whose in-degrees follow a power law: each edge's target drawn with probability proportional
    to rank^-exponent (ranks shuffled over the nodes), its source uniformly; self loops added. With exponent 0.6 and
    10 edges per node the largest in-degree is about 4,000 at 10^5 nodes and 16,000 at 10^6 (hubs), while most
    nodes have a few in-edges: the case where a kernel that walks each target's edges in one thread waits on its
    hubs. Duplicate edges are kept (both libraries count each copy)."""
    generator = torch.Generator().manual_seed(seed)
    num_edges = num_nodes * avg_degree
    weights = torch.arange(1, num_nodes + 1, dtype=torch.float64).pow(-exponent)
    cumulative = torch.cumsum(weights, 0)
    draws = torch.rand(num_edges, generator=generator, dtype=torch.float64) * cumulative[-1]
    ranks = torch.searchsorted(cumulative, draws).clamp_(max=num_nodes - 1)
    node_of_rank = torch.randperm(num_nodes, generator=generator)
    target, source = node_of_rank[ranks], torch.randint(0, num_nodes, (num_edges,), generator=generator)
    order = torch.argsort(target, stable=True)  # (sorted by target, as the loaders give their graphs)
    loops = torch.arange(num_nodes)
    edge_index = torch.stack([torch.cat([source[order], loops]), torch.cat([target[order], loops])])
    return dict(name=f"power_law_{num_nodes}", features=torch.randn(num_nodes, num_features, generator=generator),
                edge_index=edge_index, labels=torch.randint(0, num_classes, (num_nodes,), generator=generator),
                loss="ce", train_mask=None, heads=[8, 1], hidden=[8], skip=False, dropout=0.6, out=num_classes)


# ----------------------------------------------------------------------------- models

class PyGGAT(nn.Module):
    """The same architecture built from torch_geometric.nn.GATConv (or GATv2Conv), as its users would write it."""

    def __init__(self, in_features, heads, hidden, out, skip, dropout, attention_type="gat"):
        super().__init__()
        from torch_geometric.nn import GATConv, GATv2Conv
        conv_class = GATConv if attention_type == "gat" else GATv2Conv  # GATv2Conv: separate W_s, W_t by default
        widths = [in_features] + [h * f for h, f in zip(heads[:-1], hidden)]
        self.convs = nn.ModuleList()
        for i, num_heads in enumerate(heads):
            last = i == len(heads) - 1
            # Our edge_index already has one self loop per node: give PyG the same graph.
            self.convs.append(conv_class(widths[i], out if last else hidden[i], heads=num_heads, concat=not last,
                                         dropout=dropout, add_self_loops=False, residual=skip))
        self.dropout = dropout

    def forward(self, x, edge_index):
        for i, conv in enumerate(self.convs):
            x = F.dropout(x, self.dropout, self.training)
            x = conv(x, edge_index)
            if i < len(self.convs) - 1:
                x = F.elu(x)
        return x


def build(implementation, workload):
    features = [workload["features"].shape[1]] + workload["hidden"] + [workload["out"]]
    attention_type = workload.get("attention_type", "gat")
    if implementation == "PyG":
        return PyGGAT(features[0], workload["heads"], workload["hidden"], workload["out"], workload["skip"],
                      workload["dropout"], attention_type)
    return GAT(len(workload["heads"]), workload["heads"], features, add_skip_connection=workload["skip"],
               dropout=workload["dropout"], layer_type=LayerType[implementation], attention_type=attention_type)


def inputs_for(implementation, workload, device=torch.device("cpu")):
    """Our layers take sparse features when they are mostly zeros (Cora) on the CPU, as the training script gives
    them; dense ones on a GPU (where a dense matrix product beats the sparse projection's backward pass) or with
    workload["dense_input"] (like for like). PyG's GATConv needs dense."""
    if implementation == "PyG" or workload.get("dense_input") or device.type != "cpu":
        return workload["features"]
    return sparsify_if_mostly_zero(workload["features"])


def make_steps(implementation, workload, device, output_nodes=False, precision="fp32", measure_layouts=False):
    """output_nodes (ours, on a workload with a training mask): the training step asks only for the training
    nodes' logits and the evaluation step for the validation nodes', as the training script does. precision:
    the steps under --precision's autocast (bf16, fp16 with a gradient scaler). measure_layouts (CUDA): also return
    the bytes of IMP3's per-graph layouts, built before the first step (None for PyG, which keeps none)."""
    from utils.training.precision import Precision
    model = build(implementation, workload).to(device)
    features = inputs_for(implementation, workload, device).to(device)
    mixed = Precision(precision, device)
    edge_index, labels = workload["edge_index"].to(device), workload["labels"].to(device)
    mask, eval_nodes = workload["train_mask"], workload.get("eval_nodes")
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    loss_fn = nn.CrossEntropyLoss() if workload["loss"] == "ce" else nn.BCEWithLogitsLoss()
    only_what_is_read = _only_what_is_read(implementation, workload, output_nodes)
    # Ours: the graph built once (checked, its layouts built on the first step), as the trainers do. PyG: its plain
    # edge_index, which GATConv takes as it is on every call.
    with warnings.catch_warnings():  # (the random graphs hold a few duplicate edges; both libraries count each copy)
        warnings.filterwarnings("ignore", "edge_index holds", UserWarning)
        graph = edge_index if implementation == "PyG" else Graph(edge_index, features.shape[0])
    if only_what_is_read:
        train_graph = graph.restricted_to(mask, len(model.layers))
        eval_graph = graph.restricted_to(eval_nodes, len(model.layers)) if eval_nodes is not None else graph
    layout_bytes = None
    if measure_layouts and implementation != "PyG" and device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated(device)
        for built in ((train_graph, eval_graph) if only_what_is_read else (graph,)):
            model.build_layouts(built)
        torch.cuda.synchronize()
        layout_bytes = torch.cuda.memory_allocated(device) - before

    def train_step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with mixed.autocast():
            if only_what_is_read:
                loss = loss_fn(model(features, train_graph).float(), labels[mask])
            else:
                logits = model(features, graph).float()
                loss = loss_fn(logits[mask], labels[mask]) if mask is not None else loss_fn(logits, labels)
        mixed.backward(loss)
        mixed.step(optimizer)

    @torch.no_grad()
    def eval_step():
        model.eval()
        with mixed.autocast():
            model(features, eval_graph if only_what_is_read else graph)

    if measure_layouts:
        return train_step, eval_step, layout_bytes
    return train_step, eval_step


def _only_what_is_read(implementation, workload, output_nodes):
    """Whether make_steps runs this model with output_nodes (--output_nodes: ours, on a workload with a training mask)."""
    return output_nodes and implementation != "PyG" and workload["train_mask"] is not None


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_interleaved(steps, device, warmup, repeats):
    """steps: {name: (train_step, eval_step)} -> {name: {"train": [ms...], "eval": [ms...]}}"""
    for train_step, eval_step in steps.values():
        for _ in range(warmup):
            train_step()
            eval_step()
    _sync(device)
    times = {name: {"train": [], "eval": []} for name in steps}
    for _ in range(repeats):
        for name, (train_step, eval_step) in steps.items():
            for kind, step in (("train", train_step), ("eval", eval_step)):
                start = time.perf_counter()
                step()
                _sync(device)
                times[name][kind].append(1000 * (time.perf_counter() - start))
    return times


def _train_step_for(workload_spec, implementation, device_name, output_nodes=False):
    """Setup for utils.profiling.run_isolated: build the workload and model in the child process."""
    train_step, _ = make_steps(implementation, make_workload(**workload_spec), torch.device(device_name), output_nodes)
    return train_step


def peak_memory(workload_spec, implementation, device, steps=3, output_nodes=False):
    """Peak extra memory (bytes) of `steps` training steps, measured in a fresh process."""
    return run_isolated(_train_step_for, (workload_spec, implementation, device.type, output_nodes), steps,
                        device.type)["peak_bytes"]


def make_workload(kind, attention_type="gat", **kwargs):
    workload = {"cora": cora_workload, "ppi": ppi_workload, "scaling": scaling_workload,
                "powerlaw": power_law_workload}[kind](**kwargs)
    return dict(workload, attention_type=attention_type)


# ----------------------------------------------------------------------------- reporting

def summarise(samples):
    ordered = sorted(samples)
    quartile = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {"median": statistics.median(ordered), "p25": quartile(0.25), "p75": quartile(0.75)}


def markdown_table(rows):
    lines = ["| workload | impl | train ms (median) | train p25-p75 | eval ms | peak MiB | train vs PyG | eval vs PyG "
             "| memory vs PyG |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        memory = f"{row['peak_bytes'] / 2 ** 20:.0f}" if row.get("peak_bytes") is not None else "-"
        ratio = lambda key: f"{row[key]:.2f}x" if row.get(key) is not None else "-"
        lines.append(f"| {row['workload']} | {row['impl']} | {row['train']['median']:.1f} | "
                     f"{row['train']['p25']:.1f}-{row['train']['p75']:.1f} | {row['eval']['median']:.1f} | {memory} | "
                     f"{ratio('train_ratio')} | {ratio('eval_ratio')} | {ratio('memory_ratio')} |")
    return "\n".join(lines)


def run_workload(spec, implementations, device, args):
    workload = make_workload(**spec)
    num_nodes, num_edges = workload["features"].shape[0], workload["edge_index"].shape[1]
    print(f"\n== {workload['name']} ({workload['attention_type']}): {num_nodes} nodes, {num_edges} edges", flush=True)
    usable = []
    for implementation in implementations:
        if implementation in ("IMP1", "IMP2") and num_nodes > args.max_dense_nodes:
            print(f"   {implementation}: skipped (dense N x N at N={num_nodes})")
        elif implementation == "PyG" and not _has_pyg():
            print("   PyG: skipped (pip install torch_geometric)")
        else:
            usable.append(implementation)
    steps = {impl: make_steps(impl, workload, device, args.output_nodes) for impl in usable}
    repeats = args.repeats if num_nodes <= 200_000 else max(3, args.repeats // 10)
    times = time_interleaved(steps, device, args.warmup if num_nodes <= 200_000 else 1, repeats)
    rows = []
    for impl in usable:
        name = workload["name"] + ("" if workload["attention_type"] == "gat" else " (gatv2)")
        if _only_what_is_read(impl, workload, args.output_nodes):
            name += ", ours: only the nodes read"
        row = {"workload": name, "impl": impl, "device": device.type, "nodes": num_nodes, "edges": num_edges,
               "train": summarise(times[impl]["train"]), "eval": summarise(times[impl]["eval"]),
               "train_samples": times[impl]["train"], "eval_samples": times[impl]["eval"]}
        if not args.skip_memory:
            row["peak_bytes"] = peak_memory(spec, impl, device, output_nodes=args.output_nodes)
        rows.append(row)
    reference = next((r for r in rows if r["impl"] == "PyG"), None)
    for row in rows:
        if reference is not None:
            row["train_ratio"] = row["train"]["median"] / reference["train"]["median"]
            row["eval_ratio"] = row["eval"]["median"] / reference["eval"]["median"]
            if row.get("peak_bytes") and reference.get("peak_bytes"):
                row["memory_ratio"] = row["peak_bytes"] / reference["peak_bytes"]
        print(markdown_table([row]).splitlines()[-1], flush=True)
    return rows


def run_cli(args):
    """The user's Cora epoch through the scripts, ours against PyG's; returns table rows."""
    from utils.datasets.download import resolve_data_dir
    from utils.paths import PROJECT_ROOT
    short, long = args.cli_epochs
    data_dir = str(resolve_data_dir(args.data_dir))
    print(f"\n== cli: training_script_cora.py vs benchmarks/pyg_cora_script.py, {short} and {long} epochs, "
          f"{args.cli_repeats} runs each", flush=True)
    seconds = {"IMP3": {short: [], long: []}, "PyG": {short: [], long: []}}
    in_run = {"IMP3": [], "PyG": []}  # ms per epoch by the script's own clock, from each LONG run
    with tempfile.TemporaryDirectory() as outputs:
        def command(implementation, epochs):
            common = ["--num_of_epochs", str(epochs), "--patience_period", "1000000", "--data_dir", data_dir]
            if implementation == "PyG":
                return [sys.executable, "-m", "benchmarks.pyg_cora_script", *common, "--device", args.device]
            on_device = ["--force_cpu"] if args.device == "cpu" else []  # (the script takes CUDA when it has one)
            return [sys.executable, str(PROJECT_ROOT / "tests" / "isolated_script.py"), outputs,
                    "training_script_cora.py", *common, *on_device]

        for _ in range(args.cli_repeats):
            for epochs in (short, long):
                for implementation in seconds:
                    if implementation == "PyG" and not _has_pyg():
                        continue
                    start = time.perf_counter()
                    finished = subprocess.run(command(implementation, epochs), cwd=PROJECT_ROOT, check=True,
                                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                    seconds[implementation][epochs].append(time.perf_counter() - start)
                    if epochs == long:
                        in_run[implementation].append(_epoch_ms_from_console(finished.stdout))
    rows = []
    for implementation, runs in seconds.items():
        if not runs[long]:
            continue
        per_epoch = 1000 * (statistics.median(runs[long]) - statistics.median(runs[short])) / (long - short)
        clock = [ms for ms in in_run[implementation] if ms is not None]
        rows.append({"workload": "cora, the script's epoch", "impl": implementation, "device": args.device,
                     "epoch_ms": per_epoch,
                     "startup_s": statistics.median(runs[short]) - short * per_epoch / 1000,
                     "in_run_epoch_ms": statistics.median(clock) if clock else None,
                     "in_run_samples_ms": clock, "runs_s": runs})
    reference = next((r for r in rows if r["impl"] == "PyG"), None)
    print("| workload | impl | ms per epoch, runs' difference | ms per epoch, script's clock | start-up and finish (s) "
          "| vs PyG (difference) | vs PyG (clock) |\n|---|---|---|---|---|---|---|")
    for row in rows:
        if reference:
            row["epoch_ratio"] = row["epoch_ms"] / reference["epoch_ms"]
            if row["in_run_epoch_ms"] and reference["in_run_epoch_ms"]:
                row["in_run_epoch_ratio"] = row["in_run_epoch_ms"] / reference["in_run_epoch_ms"]
        ratio = lambda key: f"{row[key]:.3f}x" if row.get(key) is not None else "-"
        clock = f"{row['in_run_epoch_ms']:.1f}" if row["in_run_epoch_ms"] is not None else "-"
        print(f"| {row['workload']} | {row['impl']} | {row['epoch_ms']:.1f} | {clock} | {row['startup_s']:.1f} "
              f"| {ratio('epoch_ratio')} | {ratio('in_run_epoch_ratio')} |", flush=True)
    return rows


_CONSOLE_CLOCK = re.compile(r"^epoch\s+(\d+)\s*\|\s*([\d.]+)s\b", re.MULTILINE)


def _epoch_ms_from_console(stdout, first_epoch=100):
    """ms per epoch from a script's console lines ("epoch 100 | 1.9s | ..."): from first_epoch's line to the
    last one, or None if there are not two such lines from first_epoch on."""
    clock = [(int(epoch), float(seconds)) for epoch, seconds in _CONSOLE_CLOCK.findall(stdout)
             if int(epoch) >= first_epoch]
    if len(clock) < 2:
        return None
    (start_epoch, start_s), (end_epoch, end_s) = clock[0], clock[-1]
    return 1000 * (end_s - start_s) / (end_epoch - start_epoch)


def _has_pyg():
    try:
        import torch_geometric  # noqa: F401
        return True
    except ImportError:
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description="Benchmark IMP1/IMP2/IMP3/IMP4 against PyG's GATConv.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--workloads", nargs="+", choices=["cora", "ppi", "scaling", "powerlaw", "cli"],
                        default=["cora", "ppi", "scaling"])
    parser.add_argument("--implementations", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS))
    parser.add_argument("--scaling_nodes", nargs="+", type=positive_int, default=[10_000, 100_000, 1_000_000],
                        help="graph sizes of the scaling and powerlaw workloads")
    parser.add_argument("--scaling_implementations", nargs="+", choices=IMPLEMENTATIONS, default=["IMP3", "PyG"])
    parser.add_argument("--repeats", type=positive_int, default=30, help="timed steps per model (interleaved)")
    parser.add_argument("--warmup", type=positive_int, default=5)
    parser.add_argument("--max_dense_nodes", type=positive_int, default=3000,
                        help="skip IMP1/IMP2 above this many nodes (on the PPI-sized batch one dense step takes minutes)")
    parser.add_argument("--skip_memory", action="store_true", help="do not measure peak memory")
    parser.add_argument("--output_nodes", action="store_true",
                        help="cora: our training step asks only for the training nodes' logits and our evaluation "
                             "for the validation nodes' (output_nodes), as training_script_cora.py does; PyG's "
                             "model computes every node, as its examples do")
    parser.add_argument("--attention_type", choices=["gat", "gatv2"], default="gat",
                        help="gat: ours vs PyG's GATConv; gatv2: ours vs PyG's GATv2Conv")
    parser.add_argument("--cli_epochs", type=positive_int, nargs=2, default=[20, 520], metavar=("SHORT", "LONG"),
                        help="cli: the two run lengths whose difference gives one estimate of the epoch; the LONG "
                             "runs' console clock (epoch 100 to the last line) gives the other")
    parser.add_argument("--cli_repeats", type=positive_int, default=3, help="cli: runs of each length and script")
    parser.add_argument("--num_threads", type=positive_int, default=None)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where both sides run (default: cuda when there is a GPU); recorded in every row")
    parser.add_argument("--force_cpu", action="store_true", help="the same as --device cpu")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--output", type=writable_file, default=None, help="write all measurements as JSON here")
    args = parser.parse_args(argv)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    device = torch.device("cpu" if args.force_cpu else args.device)
    args.device = device.type
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")

    rows, cli_rows = [], []
    for kind in args.workloads:
        common = {"kind": kind, "attention_type": args.attention_type}
        if kind == "cli":
            cli_rows = run_cli(args)
        elif kind == "cora":
            rows += run_workload(dict(common, data_dir=args.data_dir), args.implementations, device, args)
        elif kind == "ppi":
            rows += run_workload(common, args.implementations, device, args)
        else:
            for num_nodes in args.scaling_nodes:
                rows += run_workload(dict(common, num_nodes=num_nodes), args.scaling_implementations, device, args)
    if rows:
        print("\n" + markdown_table(rows))
    rows += cli_rows
    if args.output:
        write_json(args.output, {"date": datetime.datetime.now().isoformat(timespec="minutes"),
                                 "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                                            f"{torch.get_num_threads()} torch threads, device {device}",
                                 "torch": torch.__version__, "rows": rows})


if __name__ == "__main__":
    main()
