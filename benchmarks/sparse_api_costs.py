"""What each piece of PyTorch's sparse API costs in IMP4's training step, next to IMP3's step on the same work.

    python -m benchmarks.sparse_api_costs                          # Cora, the paper's model
    python -m benchmarks.sparse_api_costs --workload ppi           # a PPI-sized batch (2 graphs, 4/4/6 heads x 256)
    python -m benchmarks.sparse_api_costs --workload scaling --num_nodes 100000

The model, graph and step are benchmarks.bench_speed's (forward, backward and Adam on the whole graph). After
--warmup steps, torch.profiler records --steps steps of each implementation, one after the other, and the
CPU time of the operators below, including what they call (e.g. the copies inside sparse softmax), is summed
into groups, in milliseconds per step. CPU only: on a GPU the kernels run asynchronously and the profiler's
CPU times are not their cost.

    sparse softmax      aten::_sparse_softmax and its backward
    sparse @ dense      aten::bmm (forward, and the backward's A^T @ grad_out; in these steps only IMP4's
                        sparse products call it)
    sampled product     aten::sparse_sampled_addmm (the product's backward with respect to the attention)
    values' gradient    aten::sparse_mask: the backward of sparse_coo_tensor(indices, values), which picks the
                        gradient's entries at the tensor's indices (matching two index sets, even equal ones)
    coalescing          aten::_coalesce, the sort (IMP4 builds its tensors coalesced: this row should be 0;
                        aten::coalesce on a tensor marked coalesced returns it as it is)
    everything else     projections, gathers, dropout, loss, Adam, ... (all of IMP3's step)
"""

import collections

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.bench_speed import make_steps, make_workload
from utils.plumbing.arguments import new_parser, positive_int

GROUPS = (
    ("sparse softmax", ("aten::_sparse_softmax", "aten::_sparse_softmax_backward_data")),
    ("sparse @ dense", ("aten::bmm",)),
    ("sampled product", ("aten::sparse_sampled_addmm",)),
    ("values' gradient", ("aten::sparse_mask",)),
    ("coalescing", ("aten::_coalesce",)),
)


def group_of(operator):
    for group, operators in GROUPS:
        if operator in operators:
            return group
    return "everything else"


def cpu_ms_per_group(step, steps):
    """{group: CPU ms per step} of `steps` calls of `step`, and the costliest operators by self time (top 12).

    A group's time is its operators' time including what they call (the copies inside sparse softmax, say),
    counted once where they nest; "everything else" is the rest of the step's CPU time."""
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            step()
    per_group, per_operator = collections.Counter(), collections.Counter()
    total = 0.0
    for event in profiler.events():
        total += event.self_cpu_time_total
        per_operator[event.name] += event.self_cpu_time_total / 1000 / steps
        if group_of(event.name) != "everything else" and not _inside_a_group(event):
            per_group[group_of(event.name)] += event.cpu_time_total
    per_group["everything else"] = total - sum(per_group.values())
    return {group: microseconds / 1000 / steps for group, microseconds in per_group.items()}, \
        per_operator.most_common(12)


def _inside_a_group(event):
    parent = event.cpu_parent
    while parent is not None:
        if group_of(parent.name) != "everything else":
            return True
        parent = parent.cpu_parent
    return False


def get_parser():
    parser = new_parser("CPU time of IMP4's sparse-API operators per training step, next to IMP3.",
                        prog="python -m benchmarks.sparse_api_costs")
    parser.add_argument("--workload", choices=["cora", "ppi", "scaling"], default="cora",
                        help="benchmarks.bench_speed's workload of that name")
    parser.add_argument("--num_nodes", type=positive_int, default=100_000, help="with --workload scaling")
    parser.add_argument("--attention_type", choices=["gat", "gatv2"], default="gat", help="GAT or GATv2 scores")
    parser.add_argument("--steps", type=positive_int, default=10, help="profiled training steps per implementation")
    parser.add_argument("--warmup", type=positive_int, default=3, help="unprofiled steps first")
    parser.add_argument("--data_dir", default=None,
                        help="with --workload cora: the dataset folder; without it: $GAT_DATA_DIR if set, else data/")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    kwargs = {"cora": dict(data_dir=args.data_dir), "ppi": {}, "scaling": dict(num_nodes=args.num_nodes)}
    workload = make_workload(args.workload, attention_type=args.attention_type, **kwargs[args.workload])
    print(f"{workload['name']} ({args.attention_type}): {workload['features'].shape[0]} nodes, "
          f"{workload['edge_index'].shape[1]} edges; torch {torch.__version__}, {torch.get_num_threads()} threads")
    results = {}
    for implementation in ("IMP3", "IMP4"):
        train_step, _ = make_steps(implementation, workload, torch.device("cpu"))
        for _ in range(args.warmup):
            train_step()
        results[implementation] = cpu_ms_per_group(train_step, args.steps)

    names = [group for group, _ in GROUPS] + ["everything else"]
    print("\n| CPU ms per training step | IMP3 | IMP4 |\n|---|---|---|")
    for name in names:
        print(f"| {name} | {results['IMP3'][0].get(name, 0.0):.1f} | {results['IMP4'][0].get(name, 0.0):.1f} |")
    print(f"| **total** | {sum(results['IMP3'][0].values()):.1f} | {sum(results['IMP4'][0].values()):.1f} |")
    print("\nIMP4's costliest operators (self CPU ms per step):")
    for operator, milliseconds in results["IMP4"][1]:
        print(f"  {milliseconds:8.2f}  {operator}  ({group_of(operator)})")
    return results


if __name__ == "__main__":
    main()
