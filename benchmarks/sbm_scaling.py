"""Generated graphs (utils/datasets/sbm_graph.py): does the signal need the graph, and does sampled training stay flat in memory?

    python -m benchmarks.sbm_scaling needs_graph --data_dir data/sbm_1e5
    python -m benchmarks.sbm_scaling step_memory --data_dir data/sbm_1e5 --fanouts 10 10 --batch_size 1024

needs_graph: trains the same GAT (the Cora architecture) on the generated graph twice, once with its edges
and once with every edge removed (self loops only), and prints both test accuracies.

step_memory: loads the graph, then measures a neighbour-sampled training step at a fixed batch size:
time (median of the steps after warm-up) and the peak growth of the process's resident memory while
stepping (polled every millisecond, against the resident size before the first step). Run it once per
graph size, each in a fresh process, so the numbers of one size do not carry into the next.
"""

import argparse
import statistics
import threading
import time

import torch

from utils.plumbing.arguments import positive_int
from utils.profiling import memory_status


def _rss_mib():
    return memory_status("VmRSS") / 2 ** 20


def needs_graph(args):
    from utils.datasets.sbm_graph import load_sbm_graph
    from utils.training.one_graph import train_one_graph

    graph = load_sbm_graph(args.data_dir)
    no_edges = torch.arange(graph.num_nodes).repeat(2, 1)
    results = {}
    for name, edge_index in (("with edges", graph.edge_index), ("without edges", no_edges)):
        data = type(graph)(**{**vars(graph), "edge_index": edge_index})
        config = dict(dataset_name="sbm", num_of_epochs=args.epochs, patience_period=args.epochs, seed=args.seed,
                      console_log_freq=0, checkpoint_freq=0, save_binary=False, last_checkpoint_seconds=None,
                      fanouts=args.fanouts, batch_size=args.batch_size)
        results[name] = train_one_graph(config, log=lambda *_: None, data=data)["test_acc"]
        print(f"{name}: test accuracy {results[name]:.4f}", flush=True)
    print(f"\n| graph | GAT with edges | same model without edges | chance |\n|---|---|---|---|\n"
          f"| sbm, {graph.num_nodes} nodes | {100 * results['with edges']:.1f} % | "
          f"{100 * results['without edges']:.1f} % | {100 / graph.num_classes:.1f} % |")


def step_memory(args):
    from utils.datasets.sbm_graph import load_sbm_graph
    from utils.training.one_graph import CITATION_ARCHITECTURE
    from utils.training.sampling import NeighbourSampler
    from utils.training.setup import build_model

    start = time.perf_counter()
    graph = load_sbm_graph(args.data_dir)
    sampler = NeighbourSampler(graph.edge_index, graph.num_nodes, args.fanouts, seed=0)
    print(f"{graph.num_nodes} nodes, {graph.edge_index.shape[1]} edges (with self loops): loaded and indexed in "
          f"{time.perf_counter() - start:.1f}s", flush=True)
    torch.manual_seed(0)
    model = build_model(CITATION_ARCHITECTURE, graph.node_features.shape[1], graph.num_classes, "IMP3").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    order = graph.train_indices[torch.randperm(graph.train_indices.numel(), generator=torch.Generator().manual_seed(0))]

    batches = torch.split(order, args.batch_size)[:max(1, order.numel() // args.batch_size)]  # whole batches only

    def step(i):
        batch = sampler.sample(batches[i % len(batches)])
        logits = model(graph.node_features[batch.nodes], batch.graph())[:batch.num_targets]
        loss = loss_fn(logits, graph.labels[batch.nodes[:batch.num_targets]])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return batch

    # Peak resident memory while stepping (polled every millisecond), against the resident size before the
    # first step: the working memory of sampled training, with the graph itself already loaded.
    before = _rss_mib()
    peak, stepping = [before], True

    def poll():
        while stepping:
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.001)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    times, sizes = [], []
    for i in range(args.warmup + args.steps):
        tic = time.perf_counter()
        batch = step(i)
        if i >= args.warmup:
            times.append(1000 * (time.perf_counter() - tic))
            sizes.append((batch.num_nodes, batch.edge_index.shape[1]))
    stepping = False
    poller.join()
    print("| nodes | batch | fanouts | sampled nodes / edges (median) | step (ms, median) | peak memory growth "
          "during the steps (MiB) | resident before (MiB) |\n|---|---|---|---|---|---|---|")
    print(f"| {graph.num_nodes} | {args.batch_size} | {args.fanouts} | "
          f"{statistics.median(n for n, _ in sizes):.0f} / {statistics.median(e for _, e in sizes):.0f} | "
          f"{statistics.median(times):.1f} | {peak[0] - before:.1f} | {before:.0f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("what", choices=["needs_graph", "step_memory"])
    parser.add_argument("--data_dir", required=True, help="a folder written by python -m utils.datasets.sbm_graph")
    parser.add_argument("--fanouts", type=positive_int, nargs="+", default=[10, 10])
    parser.add_argument("--batch_size", type=positive_int, default=1024, help="target nodes per step")
    parser.add_argument("--epochs", type=positive_int, default=20, help="needs_graph: training epochs per model")
    parser.add_argument("--steps", type=positive_int, default=20, help="step_memory: measured steps")
    parser.add_argument("--warmup", type=positive_int, default=3, help="step_memory: steps before measuring")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    {"needs_graph": needs_graph, "step_memory": step_memory}[args.what](args)


if __name__ == "__main__":
    main()
