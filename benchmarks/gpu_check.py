"""One command that checks the GPU path end to end and measures it against PyTorch Geometric, inside a time budget.

    python -m benchmarks.gpu_check --data_dir DIR --budget_s 420 --output gpu_check.json   # a GPU: about 7 minutes
    python -m benchmarks.gpu_check --device cpu --quick                                   # the same checks, CPU

It assumes the least of the machine: the repository's checkout and the packages of a typical CUDA image (torch,
torch_geometric, numpy, scipy, pytest; nothing is installed, nothing downloaded). Cora's Planetoid files must be
in DIR/planetoid/ (ind.cora.*: copy them into the checkout's data/planetoid/, or point --data_dir at them).

Every section runs in a subprocess of its own, so that a device-side assert (a CUDA error that poisons the process)
fails that section only, and within what is left of --budget_s, checked before every section and every graph size
of the sweep, which comes last and stops where the next size would not fit. The JSON (--output) and its markdown
table (the same name, .md) are rewritten after every row: a run stopped at any moment leaves every row so far.

    environment     the device, torch, CUDA, PyG, torch_scatter and pyg_lib versions (a missing PyG: a failure on
                    a GPU, where the comparison is the point; skipped on the CPU)
    fast ops        every op of models/fast_ops.py against its plain expression (models/plain_ops.py), on the device,
                    float64, through one chunk and many (tests/models/test_fast_ops.py)
    layers          IMP3 against IMP1 and against the CPU on Cora, float64: logits and gradients
    large graph     a graph with E x H > 2^22 on the device against the CPU
    host syncs      what a warm full-batch step, a sampled step and a PPI step on new batches make the host wait
                    for (CUDA: the sync debug mode; CPU: utils.profiling.HostSyncCounter)
    precision       bf16 and fp16 runs of the trainer: finite, learning, and different from fp32 (the flag did
                    something)
    determinism     the same seed twice, the same history, GAT and GATv2
    speed           IMP3 and PyG, each built, measured and freed on its own (one's failure never hides the other's
                    numbers), timed interleaved: Cora like for like (dense input, every node's logits, both sides)
                    and as the training script runs it, Cora in bf16 and fp16, a PPI-sized batch, a power-law graph
                    (hubs of thousands of in-edges), then random graphs of growing size. Peak memory counts from
                    before the first step; IMP3's per-graph layouts are their own column.

A section that fails says why in one line. Exit status 1 if any failed.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

from utils.paths import PROJECT_ROOT
from utils.plumbing.arguments import writable_file
from utils.plumbing.files import write_json

ROW_MARK = "GPU_CHECK_ROW "
# (section, what it is given, the seconds it is expected to take on a GPU: for the budget's estimate)
SECTIONS = [("environment", 15), ("fast ops", 60), ("layers", 30), ("large graph", 30), ("host syncs", 30),
            ("precision", 45), ("determinism", 30), ("speed: Cora", 45), ("speed: PPI-sized batch", 40),
            ("speed: power-law graph", 40)]
SWEEP_SIZES = [100_000, 300_000, 1_000_000, 3_000_000, 10_000_000]
QUICK_SWEEP_SIZES = [10_000, 30_000]
MIN_SECONDS = 8  # a section or a size started with less than this left is skipped, said so


# ----------------------------------------------------------------------------- the parent: budget, rows, files

def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.section:
        return run_section(args)
    sys.stdout.reconfigure(line_buffering=True)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda, but torch sees no GPU here (torch.cuda.is_available() is False)")
    deadline = time.monotonic() + args.budget_s
    rows = []
    report = Report(args.output, rows)
    print(f"gpu_check on {args.device}, budget {args.budget_s:.0f} s", flush=True)
    for name, _ in SECTIONS:
        if name == "speed: PPI-sized batch" and args.quick:
            continue
        report.add(run_child(args, name, deadline))
    sizes = QUICK_SWEEP_SIZES if args.quick else [n for n in SWEEP_SIZES if n <= args.max_nodes]
    last_seconds, last_size = None, None
    for num_nodes in sizes:
        left = deadline - time.monotonic()
        # The next size takes about (its size / the last one's) times the last one's time; stop where it won't fit.
        estimate = None if last_seconds is None else last_seconds * num_nodes / last_size
        if left < MIN_SECONDS or (estimate is not None and estimate > left):
            needs = f", this size would take about {estimate:.0f} s" if estimate is not None else ""
            report.add([dict(check=f"speed: random graph, {num_nodes:,} nodes", status="skipped", seconds=0,
                             detail=f"the budget: {left:.0f} s left{needs}")])
            break
        started = time.monotonic()
        new_rows = run_child(args, "speed: random graph", deadline, num_nodes=num_nodes)
        report.add(new_rows)
        last_seconds, last_size = time.monotonic() - started, num_nodes
        if any(row["status"] == "fail" for row in new_rows):
            break
    print("\n" + markdown(rows), flush=True)
    failed = [row["check"] for row in rows if row["status"] == "fail"]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


class Report:
    """The rows so far, printed as they come and written (JSON and markdown) after every one."""

    def __init__(self, output, rows):
        self.output, self.rows = output, rows
        self.header = {"date": time.strftime("%Y-%m-%d %H:%M"), "argv": sys.argv[1:],
                       "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}

    def add(self, new_rows):
        for row in new_rows:
            self.rows.append(row)
            print(f"[{row['status']:7s}] {row['check']}: {row['detail']} ({row['seconds']} s)", flush=True)
        if self.output:
            write_json(self.output, dict(self.header, rows=self.rows))
            Path(self.output).with_suffix(".md").write_text(markdown(self.rows) + "\n")


def run_child(args, section, deadline, **extra):
    """Run one section in a subprocess within the time left; its rows, or one failed row saying why."""
    left = deadline - time.monotonic()
    if left < MIN_SECONDS:
        return [dict(check=section, status="skipped", seconds=0, detail=f"the budget: {left:.0f} s left")]
    command = [sys.executable, "-m", "benchmarks.gpu_check", "--section", section, "--device", args.device,
               "--max_nodes", str(args.max_nodes)] + (["--quick"] if args.quick else []) + \
        (["--data_dir", args.data_dir] if args.data_dir else []) + \
        [flag for key, value in extra.items() for flag in (f"--{key}", str(value))]
    started = time.monotonic()
    try:
        finished = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=left)
    except subprocess.TimeoutExpired:
        return [dict(check=section, status="fail", seconds=round(time.monotonic() - started, 1),
                     detail=f"stopped after {left:.0f} s: the budget ran out")]
    rows = [json.loads(line[len(ROW_MARK):]) for line in finished.stdout.splitlines() if line.startswith(ROW_MARK)]
    if finished.returncode != 0 and not rows:
        last = (finished.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
        rows = [dict(check=section, status="fail", seconds=round(time.monotonic() - started, 1),
                     detail=f"the process ended with {finished.returncode}: {last}")]
    return rows


def markdown(rows):
    lines = ["| check | status | result | s |", "|---|---|---|---|"]
    lines += [f"| {r['check']} | {r['status']} | {r['detail']} | {r['seconds']} |" for r in rows]
    return "\n".join(lines)


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (about two minutes on a CPU)")
    parser.add_argument("--budget_s", type=float, default=420.0,
                        help="seconds for the whole check; every section and graph size starts only if it fits")
    parser.add_argument("--data_dir", default=None, help="the folder with planetoid/ind.cora.*")
    parser.add_argument("--max_nodes", type=int, default=10_000_000, help="the largest random graph to try")
    parser.add_argument("--output", type=writable_file, default=None,
                        help="write every row as JSON here (and the table beside it, .md), after every row")
    parser.add_argument("--section", default=None, help=argparse.SUPPRESS)   # (the parent runs each section so)
    parser.add_argument("--num_nodes", type=int, default=None, help=argparse.SUPPRESS)
    return parser


# ----------------------------------------------------------------------------- the child: one section

def run_section(args):
    device = torch.device(args.device)
    function = SECTION_FUNCTIONS[args.section]
    started = time.perf_counter()
    try:
        rows = function(device, args)
    except Exception as error:  # a failed section is a result: one line that says why
        first_line = (str(error).splitlines() or [""])[0][:300]
        rows = [dict(check=args.section, status="fail", detail=f"{type(error).__name__}: {first_line}")]
    for row in rows:
        row.setdefault("seconds", round(time.perf_counter() - started, 1))
        print(ROW_MARK + json.dumps(row, default=str), flush=True)
    return 0


def _row(check, status, detail, **numbers):
    return dict(check=check, status=status, detail=detail, **numbers)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _cora(args):
    """Cora from --data_dir; missing Cora is a failure (its rows are the point), said with where the files go."""
    from utils.datasets.planetoid import load_planetoid
    return load_planetoid("cora", args.data_dir, download=False)


def _has(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def environment(device, args):
    numbers = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
               or platform.machine(), "torch": torch.__version__, "cuda": torch.version.cuda,
               "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
               "python": platform.python_version(), "cpu_threads": torch.get_num_threads(),
               "torch_scatter": _has("torch_scatter"), "pyg_lib": _has("pyg_lib"), "pytest": _has("pytest")}
    try:
        import torch_geometric
        numbers["torch_geometric"] = torch_geometric.__version__
    except ImportError:
        numbers["torch_geometric"] = None
    if device.type == "cuda":
        numbers["gpu_memory_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 2 ** 30, 1)
    text = ", ".join(f"{k} {v}" for k, v in numbers.items() if v is not None)
    if numbers["torch_geometric"] is None and device.type == "cuda":
        return [_row("environment", "fail", text + "; PyG is missing: the speed rows compare against it "
                     "(python -m pip install torch_geometric)", **numbers)]
    return [_row("environment", "info", text, **numbers)]


def fast_ops(device, args):
    if not _has("pytest"):
        return [_row("fast ops", "fail", "pytest is not installed: python -m pip install pytest")]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/models/test_fast_ops.py",
               "-k", device.type]
    finished = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    summary = (finished.stdout.strip().splitlines() or ["(no output)"])[-1]
    if finished.returncode != 0:
        error = (finished.stderr.strip().splitlines() or [""])[-1]
        summary = f"{summary}{'; ' + error if error else ''}"
    return [_row("fast ops", "pass" if finished.returncode == 0 else "fail", summary[:400])]


def layers(device, args):
    from models import GAT, Graph
    from utils.datasets.graph import sparsify_if_mostly_zero
    cora = _cora(args)
    features = sparsify_if_mostly_zero(cora.node_features.double())

    def logits_and_gradients(layer_type, on, attention_type, features, edge_index):
        torch.manual_seed(0)
        model = GAT(2, [8, 1], [1433, 8, 7], add_skip_connection=False, dropout=0.0, layer_type=layer_type,
                    attention_type=attention_type).double().to(on)
        on_features = features.to(on) if on.type == "cpu" else features.to_dense().to(on)
        logits = model(on_features, Graph(edge_index.to(on), features.shape[0]))
        logits.square().sum().backward()
        return logits.detach().cpu(), [p.grad.cpu() for p in model.parameters()]

    worst = 0.0
    first, kept = 600, (cora.edge_index < 600).all(0)
    small = features.to_dense()[:first].to_sparse_csr(), cora.edge_index[:, kept]
    for attention_type in ("gat", "gatv2"):
        # (IMP1's GATv2 holds N x N x H x F scores: the graph of Cora's first 600 nodes, each keeps its self loop)
        whole = (features, cora.edge_index)
        reference = logits_and_gradients("IMP3", torch.device("cpu"), attention_type, *whole)
        comparisons = [("IMP3", whole, reference)] + ([("IMP1", whole, reference)] if attention_type == "gat" else [
            ("IMP1", small, logits_and_gradients("IMP3", torch.device("cpu"), attention_type, *small))])
        for layer_type, graph, expected in comparisons:
            logits, grads = logits_and_gradients(layer_type, device, attention_type, *graph)
            for a, b in zip([logits, *grads], [expected[0], *expected[1]]):
                worst = max(worst, float(((a - b).abs() / (b.abs() + 1e-12)).max()) if a.numel() else 0.0)
                torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    return [_row("layers", "pass", f"on {device.type}, float64, logits and gradients: IMP3 = IMP3 on the CPU "
                 f"(GAT, GATv2, Cora); IMP1 = that too (GAT on Cora, GATv2 on its first {first} nodes)",
                 worst_relative_difference=worst)]


def large_graph(device, args):
    from benchmarks.bench_speed import scaling_workload
    from models import GAT, Graph, gathers
    workload = scaling_workload(60_000 if args.quick else 200_000)
    num_edges = workload["edge_index"].shape[1]

    def run(on, chunk=None):
        torch.manual_seed(0)
        model = GAT(2, [8, 1], [64, 8, 10], add_skip_connection=False, dropout=0.0).to(on)
        saved = gathers.CUDA_CHUNK_ELEMENTS
        gathers.CUDA_CHUNK_ELEMENTS = chunk or saved
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "edge_index holds", UserWarning)
                graph = Graph(workload["edge_index"].to(on), workload["features"].shape[0])
            logits = model(workload["features"].to(on), graph)
            logits.square().mean().backward()
        finally:
            gathers.CUDA_CHUNK_ELEMENTS = saved
        return logits.detach().cpu(), [p.grad.cpu() for p in model.parameters()]

    reference = run(torch.device("cpu"))
    results = {"device": run(device)}
    if device.type == "cuda":
        results["device, chunks of 2^20"] = run(device, chunk=1 << 20)
    for name, (logits, grads) in results.items():
        for a, b in zip([logits, *grads], [reference[0], *reference[1]]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    return [_row("large graph", "pass", f"{num_edges} edges x 8 heads = {num_edges * 8:,} > 2^22: "
                 f"{', '.join(results)} = the CPU", edges=num_edges)]


def _count_syncs(device, step):
    """Host syncs made by step(): the sync debug mode's warnings on CUDA, HostSyncCounter on the CPU."""
    from utils.profiling import HostSyncCounter
    _sync(device)
    if device.type == "cuda":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                step()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)
    with HostSyncCounter() as syncs:
        step()
    return sum(syncs.counts.values())


def host_syncs(device, args):
    from models import Graph
    from utils.datasets.graph import merge_graphs
    from utils.datasets.ppi import load_ppi
    from utils.datasets.ppi_synthetic import write_synthetic_ppi
    from utils.training.many_graphs import PPI_ARCHITECTURE
    from utils.training.one_graph import CITATION_ARCHITECTURE, LabelledGraph
    from utils.training.sampling import NeighbourSampler
    from utils.training.setup import build_model, make_optimizer, to_device
    cora = _cora(args)
    counts = {}
    for attention_type in ("gat", "gatv2"):
        graph = LabelledGraph(cora.to(device))
        model = build_model(CITATION_ARCHITECTURE, 1433, 7, "IMP3", attention_type=attention_type).to(device)
        optimizer = make_optimizer(model, 0.005, 5e-4)
        train, val = graph.restricted("train", 2), graph.restricted("val", 2)

        def full_batch_step():
            model.train()
            optimizer.zero_grad()
            logits = model(graph.node_features, train)
            torch.nn.functional.cross_entropy(logits, graph.labels[graph.nodes["train"]]).backward()
            optimizer.step()
            model.eval()
            with torch.no_grad():
                model(graph.node_features, val)
        full_batch_step(), full_batch_step()
        counts[f"full-batch {attention_type}"] = _count_syncs(device, full_batch_step)

    # Sampled and PPI steps on a new batch each: the batch's graph checked and laid out on the CPU, then copied.
    model = build_model(CITATION_ARCHITECTURE, 1433, 7, "IMP3").to(device)
    optimizer = make_optimizer(model, 0.005)
    sampler, features = NeighbourSampler(cora.edge_index, cora.num_nodes, [10, 10], seed=0), cora.node_features.to(
        device)
    labels = cora.labels.to(device)
    batches = [sampler.sample(cora.train_indices[first:first + 64]) for first in (0, 64, 76)]
    prepared = [(to_device(model.build_layouts(b.graph()), device), to_device(b.nodes, device), b.num_targets)
                for b in batches]

    def sampled_step(batch):
        graph, nodes, num_targets = batch
        optimizer.zero_grad()
        logits = model(features.index_select(0, nodes), graph)[:num_targets]
        torch.nn.functional.cross_entropy(logits, labels[nodes[:num_targets]]).backward()
        optimizer.step()
    sampled_step(prepared[0]), sampled_step(prepared[1])
    counts["sampled, new batch"] = _count_syncs(device, lambda: sampled_step(prepared[2]))

    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        write_synthetic_ppi(Path(folder) / "ppi", graphs_per_split=(4, 1, 1), nodes_per_graph=(30, 40))
        graphs = load_ppi(folder)["train"]
    model = build_model(dict(PPI_ARCHITECTURE, hidden_features=[16, 16]), 50, 121, "IMP3").to(device)
    optimizer = make_optimizer(model, 0.005)
    ppi_batches = []
    for pair in (graphs[:2], graphs[2:], graphs[1:3]):
        batch = merge_graphs(pair)
        ppi_batches.append((to_device(model.build_layouts(Graph(batch.edge_index, batch.num_nodes)), device),
                            to_device(batch.node_features, device), to_device(batch.labels, device)))

    def ppi_step(batch):
        graph, node_features, batch_labels = batch
        optimizer.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(node_features, graph), batch_labels).backward()
        optimizer.step()
    ppi_step(ppi_batches[0]), ppi_step(ppi_batches[1])
    counts["PPI, new batch"] = _count_syncs(device, lambda: ppi_step(ppi_batches[2]))
    status = "pass" if not any(counts.values()) else "fail"
    return [_row("host syncs", status, "in a warm step: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
                 syncs_per_warm_step=counts)]


def _train(device, args, epochs, **settings):
    from utils.training.one_graph import train_one_graph
    config = dict(num_of_epochs=epochs, console_log_freq=0, checkpoint_freq=0, save_binary=False,
                  last_checkpoint_seconds=None, data_dir=args.data_dir, force_cpu=device.type == "cpu", **settings)
    return train_one_graph(config, log=lambda *_: None)


def precision(device, args):
    from models import GAT
    from utils.training.precision import Precision
    epochs, found, histories = (10 if args.quick else 40), {}, {}
    for name in ("fp32", "bf16", "fp16"):
        history = _train(device, args, epochs, precision=name)["history"]
        found[name], histories[name] = history[-1]["val_acc"], history
        if not all(torch.isfinite(torch.tensor([h["train_loss"], h["val_loss"]])).all() for h in history):
            return [_row("precision", "fail", f"{name}: a non-finite loss", val_acc=found)]
    # The flag must change the arithmetic: the projections run in the low precision, so the runs differ from fp32.
    model = GAT(1, [2], [4, 3]).to(device)
    low = {}
    for name in ("bf16", "fp16"):
        with Precision(name, device).autocast():
            low[name] = model.layers[0].linear_proj(torch.rand(3, 4, device=device)).dtype
    changed = {name: histories[name] != histories["fp32"] for name in ("bf16", "fp16")}
    learns = all(value > found["fp32"] - 0.1 for value in found.values())
    status = "pass" if learns and all(changed.values()) and low == {"bf16": torch.bfloat16, "fp16": torch.float16} \
        else "fail"
    return [_row("precision", status, f"validation accuracy after {epochs} epochs: " + ", ".join(
        f"{k} {v:.3f}" for k, v in found.items()) + f"; projections in {low['bf16']}, {low['fp16']}; histories "
        f"differ from fp32: bf16 {changed['bf16']}, fp16 {changed['fp16']}", val_acc=found)]


def determinism(device, args):
    same = {}
    for attention_type in ("gat", "gatv2"):
        runs = [_train(device, args, 5 if args.quick else 30, attention_type=attention_type, seed=3)["history"]
                for _ in range(2)]
        same[attention_type] = runs[0] == runs[1]
    return [_row("determinism", "pass" if all(same.values()) else "fail", "the same seed, the same history: "
                 + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in same.items()), same_history=same)]


# ----------------------------------------------------------------------------- speed, one implementation at a time

def _peak(device, implementation, workload, output_nodes, precision):
    """(peak bytes of 3 training steps counted from before the graph is built, bytes of IMP3's per-graph layouts):
    CUDA only (None, None on the CPU, where benchmarks/bench_speed.py measures resident memory in a child)."""
    from benchmarks.bench_speed import make_steps
    if device.type != "cuda":
        return None, None
    torch.cuda.empty_cache()
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    train_step, _, graph_bytes = make_steps(implementation, workload, device, output_nodes, precision=precision,
                                            measure_layouts=True)
    for _ in range(3):
        train_step()
    _sync(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    del train_step
    torch.cuda.empty_cache()
    return peak, graph_bytes


def speed_rows(device, args, name, spec, output_nodes=False, precision="fp32", like_for_like=True):
    """IMP3 and PyG on one workload: each built and its memory measured on its own, then timed interleaved."""
    from benchmarks.bench_speed import _has_pyg, make_steps, make_workload, summarise, time_interleaved
    started = time.perf_counter()
    workload = make_workload(**spec)
    if like_for_like:
        workload = dict(workload, dense_input=True)
    implementations = ["IMP3", "PyG"]
    numbers = {"nodes": workload["features"].shape[0], "edges": workload["edge_index"].shape[1],
               "largest_in_degree": int(torch.bincount(workload["edge_index"][1]).max()), "precision": precision}
    problems, steps = {}, {}
    if not _has_pyg():
        problems["PyG"] = "torch_geometric is not installed"

    def attempt(implementation, work):
        try:
            return work()
        except Exception as error:  # (out of memory, say: the other implementation still gets its numbers)
            problems[implementation] = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:160]}"
            if device.type == "cuda":
                torch.cuda.empty_cache()
    for implementation in implementations:  # memory: one at a time, each freed before the next
        if implementation not in problems:
            reads_some = output_nodes and implementation == "IMP3"
            peak = attempt(implementation, lambda: _peak(device, implementation, workload, reads_some, precision))
            if peak is not None:
                numbers[implementation] = {"peak_bytes": peak[0], "layout_bytes": peak[1]}
    for implementation in implementations:  # time: both alive, interleaved
        if implementation not in problems:
            reads_some = output_nodes and implementation == "IMP3"
            built = attempt(implementation, lambda: make_steps(implementation, workload, device, reads_some,
                                                               precision=precision))
            if built is not None:
                steps[implementation] = built
    if steps:
        times = time_interleaved(steps, device, warmup=2 if args.quick else 5, repeats=3 if args.quick else 15)
        for implementation in steps:
            numbers[implementation].update(train_ms=summarise(times[implementation]["train"])["median"],
                                           eval_ms=summarise(times[implementation]["eval"])["median"])
    parts = []
    for implementation in implementations:
        values = numbers.get(implementation, {})
        if implementation in problems:
            parts.append(f"{implementation}: {problems[implementation]}")
            continue
        text = f"{implementation} train {values['train_ms']:.2f} ms, eval {values['eval_ms']:.2f} ms"
        if values.get("peak_bytes") is not None:
            text += f", peak {values['peak_bytes'] / 2 ** 20:.0f} MiB"
        if values.get("layout_bytes"):
            text += f" (layouts {values['layout_bytes'] / 2 ** 20:.0f} MiB)"
        parts.append(text)
    if "train_ms" in numbers.get("IMP3", {}) and "train_ms" in numbers.get("PyG", {}):
        numbers["train_vs_pyg"] = numbers["IMP3"]["train_ms"] / numbers["PyG"]["train_ms"]
        numbers["eval_vs_pyg"] = numbers["IMP3"]["eval_ms"] / numbers["PyG"]["eval_ms"]
        parts.append(f"train {numbers['train_vs_pyg']:.2f}x PyG, eval {numbers['eval_vs_pyg']:.2f}x")
    missing_pyg = "PyG" in problems and problems["PyG"].startswith("torch_geometric")
    status = "fail" if ("IMP3" in problems or (missing_pyg and device.type == "cuda")
                        or ("PyG" in problems and not missing_pyg)) else "info"
    parts.append(f"{numbers['nodes']:,} nodes, {numbers['edges']:,} edges, largest in-degree "
                 f"{numbers['largest_in_degree']:,}")
    return [_row(f"speed: {name}", status, "; ".join(parts), seconds=round(time.perf_counter() - started, 1),
                 **numbers)]


def speed_cora(device, args):
    spec = dict(kind="cora", data_dir=args.data_dir)
    _cora(args)
    rows = speed_rows(device, args, "Cora, like for like (dense input, every node's logits, both sides)", spec)
    rows += speed_rows(device, args, "Cora, as the training script runs it (IMP3: the nodes read only; CPU: "
                       "sparse input)", spec, output_nodes=True, like_for_like=False)
    for name in ("bf16", "fp16"):
        rows += speed_rows(device, args, f"Cora, {name} (autocast; the attention stays float32)", spec,
                           precision=name)
    return rows


def speed_ppi(device, args):
    return speed_rows(device, args, "PPI-sized batch (2 graphs, ~4,600 nodes, ~144k edges)", dict(kind="ppi"))


def speed_power_law(device, args):
    num_nodes = 20_000 if args.quick else 100_000
    return speed_rows(device, args, f"power-law graph, {num_nodes:,} nodes (hubs)",
                      dict(kind="powerlaw", num_nodes=num_nodes))


def speed_sweep(device, args):
    return speed_rows(device, args, f"random graph, {args.num_nodes:,} nodes",
                      dict(kind="scaling", num_nodes=args.num_nodes))


SECTION_FUNCTIONS = {"environment": environment, "fast ops": fast_ops, "layers": layers, "large graph": large_graph,
                     "host syncs": host_syncs, "precision": precision, "determinism": determinism,
                     "speed: Cora": speed_cora, "speed: PPI-sized batch": speed_ppi,
                     "speed: power-law graph": speed_power_law, "speed: random graph": speed_sweep}


if __name__ == "__main__":
    sys.exit(main())
