"""One command that checks the GPU path end to end and measures it against PyTorch Geometric.

    python -m benchmarks.gpu_check --output gpu_check.json      # on a machine with a GPU: a few minutes
    python -m benchmarks.gpu_check --device cpu --quick         # the same checks on the CPU, about a minute

What it checks, in order (each is one row of the table; a failed check is reported and the rest still run):
  environment     the device, torch, CUDA, cuDNN and PyG versions
  fast ops        every op of models/fast_ops.py against its plain expression, on the device, in float64, through
                  one chunk and many (tests/models/test_fast_ops.py, run for this device)
  layers          IMP3 against IMP1, and the device against the CPU, on Cora in float64: logits and gradients
  large graph     a graph with E x H > 2^22 (many CPU chunks): forward and backward on the device against the CPU
  host syncs      what a warm training step and evaluation make the host wait for (CUDA: the sync debug mode's
                  warnings; CPU: utils.profiling.HostSyncCounter), GAT and GATv2
  precision       --precision bf16 and fp16 runs of the training script's trainer on Cora: finite, learning
  determinism     the same seed twice gives the same history, GAT and GATv2
  speed           a training step, an evaluation and peak memory against PyG's GATConv: Cora, a PPI-sized batch,
                  and growing random graphs up to the largest that fits (or --max_nodes)

Cora comes from --data_dir (or $GAT_DATA_DIR, else data/); without it the checks that need it say so and are
skipped.
"""

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import time
import warnings

import torch

from utils.paths import PROJECT_ROOT
from utils.plumbing.arguments import writable_file
from utils.plumbing.files import write_json

ROWS = []


def check(name):
    """Run a check function; record its row (status pass / fail / info / skipped) whatever happens."""
    def decorate(function):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                status, detail, numbers = function(*args, **kwargs)
            except Exception as error:  # a failed check is a result, not the end of the run
                status, detail, numbers = "fail", f"{type(error).__name__}: {str(error)[:300]}", {}
            row = dict(check=name, status=status, detail=detail, seconds=round(time.perf_counter() - start, 1),
                       **numbers)
            ROWS.append(row)
            print(f"[{status:7s}] {name}: {detail} ({row['seconds']} s)", flush=True)
            return row
        return run
    return decorate


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _cora(data_dir):
    from utils.datasets.planetoid import load_planetoid
    return load_planetoid("cora", data_dir, download=False)


@check("environment")
def environment(device):
    numbers = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
               or platform.machine(), "torch": torch.__version__, "cuda": torch.version.cuda,
               "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
               "cpu_threads": torch.get_num_threads()}
    try:
        import torch_geometric
        numbers["torch_geometric"] = torch_geometric.__version__
    except ImportError:
        numbers["torch_geometric"] = None
    if device.type == "cuda":
        numbers["gpu_memory_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 2 ** 30, 1)
    return "info", ", ".join(f"{k} {v}" for k, v in numbers.items() if v is not None), numbers


@check("fast ops")
def fast_ops_on(device):
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/models/test_fast_ops.py",
               "-k", device.type]
    finished = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    summary = (finished.stdout.strip().splitlines() or ["(no output)"])[-1]
    return ("pass" if finished.returncode == 0 else "fail"), summary, {}


@check("layers")
def layers_agree(device, data_dir):
    from models import GAT
    from utils.datasets.graph import sparsify_if_mostly_zero
    cora = _cora(data_dir)
    features = sparsify_if_mostly_zero(cora.node_features.double())

    def logits_and_gradients(layer_type, on, attention_type):
        torch.manual_seed(0)
        model = GAT(2, [8, 1], [1433, 8, 7], add_skip_connection=False, dropout=0.0, layer_type=layer_type,
                    attention_type=attention_type).double().to(on)
        logits = model(features.to(on), cora.edge_index.to(on))
        logits.square().sum().backward()
        return logits.detach().cpu(), [p.grad.cpu() for p in model.parameters()]

    worst = 0.0
    for attention_type in ("gat", "gatv2"):
        reference = logits_and_gradients("IMP3", torch.device("cpu"), attention_type)
        # (IMP1's GATv2 holds N x N x H x F scores: too many for all of Cora in float64; it is compared below)
        for layer_type, on in (("IMP3", device), ("IMP1", device))[:2 if attention_type == "gat" else 1]:
            logits, grads = logits_and_gradients(layer_type, on, attention_type)
            for a, b in zip([logits, *grads], [reference[0], *reference[1]]):
                worst = max(worst, float(((a - b).abs() / (b.abs() + 1e-12)).max()) if a.numel() else 0.0)
                torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    # GATv2 in IMP1 on the graph of Cora's first 600 nodes (each keeps its self loop)
    first, kept = 600, (cora.edge_index < 600).all(0)
    features, cora.edge_index = features.to_dense()[:first].to_sparse_csr(), cora.edge_index[:, kept]
    reference = logits_and_gradients("IMP3", torch.device("cpu"), "gatv2")
    logits, grads = logits_and_gradients("IMP1", device, "gatv2")
    for a, b in zip([logits, *grads], [reference[0], *reference[1]]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    return "pass", (f"on {device.type}, float64, logits and gradients: IMP3 = IMP3 on the CPU (GAT, GATv2, Cora); "
                    f"IMP1 = that too (GAT on Cora, GATv2 on its first {first} nodes)"), \
        {"worst_relative_difference": worst}


@check("large graph")
def large_graph(device, quick):
    from benchmarks.bench_speed import scaling_workload
    from models import GAT, gathers
    workload = scaling_workload(60_000 if quick else 200_000)
    num_edges = workload["edge_index"].shape[1]

    def run(on, chunk=None):
        torch.manual_seed(0)
        model = GAT(2, [8, 1], [64, 8, 10], add_skip_connection=False, dropout=0.0).to(on)
        with contextlib.ExitStack() as stack:
            if chunk:
                stack.callback(setattr, gathers, "CUDA_CHUNK_ELEMENTS", gathers.CUDA_CHUNK_ELEMENTS)
                gathers.CUDA_CHUNK_ELEMENTS = chunk
            logits = model(workload["features"].to(on), workload["edge_index"].to(on))
            logits.square().mean().backward()
        return logits.detach().cpu(), [p.grad.cpu() for p in model.parameters()]

    reference = run(torch.device("cpu"))
    results = {"device": run(device)}
    if device.type == "cuda":
        results["device, chunks of 2^20"] = run(device, chunk=1 << 20)
    for name, (logits, grads) in results.items():
        for a, b in zip([logits, *grads], [reference[0], *reference[1]]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    return "pass", f"{num_edges} edges x 8 heads = {num_edges * 8:,} > 2^22: {', '.join(results)} = the CPU", \
        {"edges": num_edges}


def _warm_step(device, data_dir, attention_type):
    from models import Graph
    from utils.datasets.graph import sparsify_if_mostly_zero
    from utils.training.one_graph import CITATION_ARCHITECTURE
    from utils.training.setup import build_model, make_optimizer
    cora = _cora(data_dir).to(device)
    features = sparsify_if_mostly_zero(cora.node_features)
    model = build_model(CITATION_ARCHITECTURE, 1433, 7, "IMP3", attention_type=attention_type).to(device)
    optimizer = make_optimizer(model, 0.005, 5e-4)
    graph = Graph(cora.edge_index, cora.num_nodes)
    train, val = graph.restricted_to(cora.train_indices, 2), graph.restricted_to(cora.val_indices, 2)

    def step():
        model.train()
        optimizer.zero_grad()
        logits = model(features, train)
        torch.nn.functional.cross_entropy(logits, cora.labels[cora.train_indices]).backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            model(features, val)
    return step


@check("host syncs")
def host_syncs(device, data_dir):
    from utils.profiling import HostSyncCounter
    counts = {}
    for attention_type in ("gat", "gatv2"):
        step = _warm_step(device, data_dir, attention_type)
        step(), step()
        _sync(device)
        if device.type == "cuda":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    step()
                finally:
                    torch.cuda.set_sync_debug_mode("default")
            counts[attention_type] = sum("synchroniz" in str(w.message) for w in caught)
        else:
            with HostSyncCounter() as syncs:
                step()
            counts[attention_type] = sum(syncs.counts.values())
    status = "pass" if not any(counts.values()) else "fail"
    return status, f"per warm step + evaluation: GAT {counts['gat']}, GATv2 {counts['gatv2']}", \
        {"syncs_per_warm_step": counts}


def _train(device, data_dir, epochs, **settings):
    from utils.training.one_graph import train_one_graph
    config = dict(num_of_epochs=epochs, console_log_freq=0, checkpoint_freq=0, save_binary=False,
                  last_checkpoint_seconds=None, data_dir=data_dir, force_cpu=device.type == "cpu", **settings)
    return train_one_graph(config, log=lambda *_: None)


@check("precision")
def precision(device, data_dir, quick):
    epochs, found = (10 if quick else 40), {}
    for name in ("fp32", "bf16", "fp16"):
        history = _train(device, data_dir, epochs, precision=name)["history"]
        found[name] = history[-1]["val_acc"]
        if not all(torch.isfinite(torch.tensor([h["train_loss"], h["val_loss"]])).all() for h in history):
            return "fail", f"{name}: a non-finite loss", {"val_acc": found}
    learns = all(value > found["fp32"] - 0.1 for value in found.values())
    return ("pass" if learns else "fail"), f"validation accuracy after {epochs} epochs: " + ", ".join(
        f"{k} {v:.3f}" for k, v in found.items()), {"val_acc": found}


@check("determinism")
def determinism(device, data_dir, quick):
    same = {}
    for attention_type in ("gat", "gatv2"):
        runs = [_train(device, data_dir, 5 if quick else 30, attention_type=attention_type, seed=3)["history"]
                for _ in range(2)]
        same[attention_type] = runs[0] == runs[1]
    return ("pass" if all(same.values()) else "fail"), "the same seed, the same history: " + ", ".join(
        f"{k} {'yes' if v else 'NO'}" for k, v in same.items()), {"same_history": same}


def _peak_bytes(device, step, steps=3):
    if device.type != "cuda":
        return None
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    for _ in range(steps):
        step()
    _sync(device)
    return torch.cuda.max_memory_allocated(device) - before


@check("speed")
def speed(device, quick, workload_name, **spec):
    from benchmarks.bench_speed import _has_pyg, make_steps, make_workload, summarise, time_interleaved
    workload = make_workload(**spec)
    implementations = ["IMP3"] + (["PyG"] if _has_pyg() else [])
    numbers = {"nodes": workload["features"].shape[0], "edges": workload["edge_index"].shape[1]}
    steps = {impl: make_steps(impl, workload, device, output_nodes=workload["train_mask"] is not None)
             for impl in implementations}
    times = time_interleaved(steps, device, warmup=2 if quick else 5, repeats=3 if quick else 20)
    for impl in implementations:
        numbers[impl] = {"train_ms": summarise(times[impl]["train"])["median"],
                         "eval_ms": summarise(times[impl]["eval"])["median"],
                         "peak_bytes": _peak_bytes(device, steps[impl][0])}
    text = ", ".join(f"{impl} train {v['train_ms']:.2f} ms, eval {v['eval_ms']:.2f} ms"
                     + (f", peak {v['peak_bytes'] / 2 ** 20:.0f} MiB" if v["peak_bytes"] else "")
                     for impl, v in numbers.items() if isinstance(v, dict))
    if "PyG" in numbers:
        numbers["train_vs_pyg"] = numbers["IMP3"]["train_ms"] / numbers["PyG"]["train_ms"]
        text += f"; train {numbers['train_vs_pyg']:.2f}x PyG"
    del steps
    return "info", f"{workload_name}: {text}", numbers


def largest_graphs(device, quick, max_nodes):
    """Random graphs of growing size, both models, until one does not fit (or max_nodes)."""
    sizes = [10_000] if quick else [100_000, 300_000, 1_000_000, 3_000_000, 10_000_000]
    for num_nodes in (n for n in sizes if n <= max_nodes):
        row = speed(device, quick, f"random graph, {num_nodes:,} nodes", kind="scaling", num_nodes=num_nodes)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if row["status"] == "fail":
            break


def markdown(rows):
    lines = ["| check | status | result | s |", "|---|---|---|---|"]
    lines += [f"| {r['check']} | {r['status']} | {r['detail']} | {r['seconds']} |" for r in rows]
    return "\n".join(lines)


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (about a minute on a CPU)")
    parser.add_argument("--data_dir", default=None, help="the folder with planetoid/ind.cora.*")
    parser.add_argument("--max_nodes", type=int, default=10_000_000, help="the largest random graph to try")
    parser.add_argument("--output", type=writable_file, default=None, help="write every row as JSON here")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda, but torch sees no GPU here (torch.cuda.is_available() is False)")
    ROWS.clear()
    environment(device)
    fast_ops_on(device)
    try:
        _cora(args.data_dir)
        have_cora = True
    except Exception as error:  # the loaders say what is missing; the other checks still run
        have_cora = False
        ROWS.append(dict(check="Cora", status="skipped", detail=str(error).splitlines()[0][:200], seconds=0))
        print(f"[skipped] checks on Cora: {ROWS[-1]['detail']}")
    if have_cora:
        layers_agree(device, args.data_dir)
    large_graph(device, args.quick)
    if have_cora:
        host_syncs(device, args.data_dir)
        precision(device, args.data_dir, args.quick)
        determinism(device, args.data_dir, args.quick)
        speed(device, args.quick, "Cora", kind="cora", data_dir=args.data_dir)
    if not args.quick:
        speed(device, args.quick, "PPI-sized batch", kind="ppi")
    largest_graphs(device, args.quick, args.max_nodes)
    print("\n" + markdown(ROWS))
    if args.output:
        write_json(args.output, {"date": time.strftime("%Y-%m-%d %H:%M"), "argv": sys.argv[1:],
                                 "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "rows": ROWS})
        print(f"Wrote {args.output}")
    failed = [r["check"] for r in ROWS if r["status"] == "fail"]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
