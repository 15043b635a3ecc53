"""Graphs on disk against graphs in memory: file size, time to open, resident memory, sampled step and epoch.

    python -m benchmarks.disk_scaling --sizes 1000000 10000000 --folder /tmp/disk_bench

For each size it generates a graph on disk (utils/datasets/sbm_graph.py --disk: 10 in-edges per node, 32 features,
1 % training nodes), then, each in a fresh process, trains sampled mini-batches (fanouts 10 10, 1024 targets per
step) reading the graph from disk, and the same with the graph's arrays read into memory first (where they fit in a
third of the machine's memory). It reports the files' size, the time to open, the anonymous resident memory (the
process's own, page cache not counted) before and at most during the steps, the step time (median and 95th
percentile of 50 steps after 5 of warm-up) and one epoch (every training node once). It deletes what it wrote
(with --keep it keeps the graphs, and uses a graph already in the folder instead of writing it again).

    python -m benchmarks.disk_scaling --sizes 10000000 --folder /tmp/disk_bench --bounded_mib 560

adds the bounded-memory proof: training_script_cora.py trains the graph (sampled, one epoch, then chunked evaluation
of the validation and test nodes) inside a memory cgroup whose hard limit is a third of the graph's files or less
(cgroup v1 memory controller, as root). The graph's files are first dropped from the page cache, so that every page
the run reads is charged to its cgroup; the row reports the limit, what was still cached before, the peak the
cgroup saw, the pages charged to it over the run, and its OOM kills.
"""

import argparse
import ctypes
import json
import mmap
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from utils.plumbing.arguments import positive_int

MEMORY_CGROUP = Path("/sys/fs/cgroup/memory")


def cgroup_available():
    return os.geteuid() == 0 and (MEMORY_CGROUP / "cgroup.procs").exists()


def evict_from_page_cache(folder):
    """Write back and drop the page cache's copy of every file in folder; returns how many of their bytes are still
    cached. cgroup v1 charges a cached page to the cgroup that first read it, so pages left in the cache by the
    process that wrote a graph would be read for free by a process under a memory limit: evicted, every page the
    limited process touches is read by it and counts against its limit."""
    for path in Path(folder).iterdir():
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(descriptor)
    return sum(cached_bytes(path) for path in Path(folder).iterdir())


def cached_bytes(path):
    """How many bytes of a file are in the page cache now (mincore(2) on a mapping of it, which reads nothing)."""
    size = Path(path).stat().st_size
    if size == 0:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype, libc.mmap.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                                              ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    descriptor = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, descriptor, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), f"cannot map {path}")
        try:
            pages = np.zeros((size + mmap.PAGESIZE - 1) // mmap.PAGESIZE, dtype=np.uint8)
            if libc.mincore(address, size, pages.ctypes.data) != 0:
                raise OSError(ctypes.get_errno(), f"mincore failed on {path}")
        finally:
            libc.munmap(address, size)
    finally:
        os.close(descriptor)
    return int(np.count_nonzero(pages & 1)) * mmap.PAGESIZE


def run_under_memory_limit(argv, limit_bytes, timeout=None, **kwargs):
    """Run argv in a fresh cgroup v1 memory cgroup with a hard limit (page cache counts, and is reclaimed before the
    process would be killed; swap is not used). Returns (CompletedProcess, the cgroup's peak bytes, its OOM kills,
    the bytes of the pages charged to it over the run: memory.stat's pgpgin, anonymous and page cache)."""
    group = MEMORY_CGROUP / f"pytorch_gat_{os.getpid()}_{time.monotonic_ns()}"
    group.mkdir()
    try:
        (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
        (group / "memory.swappiness").write_text("0")
        command = "echo $$ > " + str(group / "cgroup.procs") + " && exec " + " ".join(map(str, argv))
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=timeout, **kwargs)
        peak = int((group / "memory.max_usage_in_bytes").read_text())
        oom_kills = next((int(line.split()[1]) for line in (group / "memory.oom_control").read_text().splitlines()
                          if line.startswith("oom_kill ")), 0)
        charged = next(int(line.split()[1]) for line in (group / "memory.stat").read_text().splitlines()
                       if line.startswith("pgpgin ")) * mmap.PAGESIZE
    finally:
        time.sleep(0.5)  # (the cgroup empties a moment after its last process exits)
        group.rmdir()
    return done, peak, oom_kills, charged


def anonymous_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(folder, in_memory, steps=50, warmup=5, batch_size=1024, fanouts=(10, 10)):
    """In this process: open the graph (and read it into memory if asked), then time sampled training steps."""
    from models import Graph  # noqa: F401  (the imports before the clock, as a script has them)
    from utils.datasets.disk_graph import open_disk_graph
    from utils.training.one_graph import CITATION_ARCHITECTURE
    from utils.training.sampling import InNeighbours, NeighbourSampler
    from utils.training.setup import build_model, make_optimizer
    started = time.perf_counter()
    disk = open_disk_graph(folder)
    opened = time.perf_counter() - started
    if in_memory:
        for name in ("indptr", "indices", "features", "labels"):
            setattr(disk, name, np.array(getattr(disk, name)))
    loaded = time.perf_counter() - started
    torch.manual_seed(0)
    model = build_model(CITATION_ARCHITECTURE, disk.num_features, disk.num_classes, "IMP3")
    optimizer = make_optimizer(model, 5e-3, 5e-4)
    sampler = NeighbourSampler(None, disk.num_nodes, list(fanouts), seed=0, neighbours=InNeighbours.from_csr(
        torch.from_numpy(np.asarray(disk.indptr)), torch.from_numpy(np.asarray(disk.indices))))
    before = anonymous_mib()
    peak = [before]
    stepping = [True]

    def poll():
        while stepping[0]:
            peak[0] = max(peak[0], anonymous_mib())
            time.sleep(0.005)
    threading.Thread(target=poll, daemon=True).start()
    order = disk.train_indices[torch.randperm(disk.train_indices.numel(), generator=torch.Generator().manual_seed(0))]
    batches = torch.split(order, batch_size)

    def step(targets):
        batch = sampler.sample(targets)
        graph = model.build_layouts(batch.graph())
        optimizer.zero_grad(set_to_none=True)
        logits = model(disk.rows(batch.nodes), graph)[:batch.num_targets]
        torch.nn.functional.cross_entropy(logits, disk.labels_of(batch.nodes[:batch.num_targets])).backward()
        optimizer.step()
    times = []
    for index in range(warmup + steps):
        begun = time.perf_counter()
        step(batches[index % len(batches)])
        if index >= warmup:
            times.append(time.perf_counter() - begun)
    begun = time.perf_counter()
    for targets in batches:
        step(targets)
    epoch = time.perf_counter() - begun
    stepping[0] = False
    times.sort()
    return dict(open_s=round(opened, 3), load_s=round(loaded, 2), anon_before_mib=round(before),
                anon_peak_mib=round(peak[0]), step_ms=round(1000 * statistics.median(times), 1),
                step_p95_ms=round(1000 * times[int(0.95 * (len(times) - 1))], 1), epoch_s=round(epoch, 1),
                steps_per_epoch=len(batches))


def bounded_training(graph, graph_bytes, limit, scratch):
    """training_script_cora.py on the graph, one sampled epoch and chunked evaluation, under a hard memory limit."""
    if not cgroup_available():
        return "needs root and the cgroup v1 memory controller"
    if graph_bytes < 3 * limit:
        return f"files {graph_bytes / limit:.1f}x the limit, less than 3x: not run"
    # (its runs/, checkpoints and binaries go to the scratch folder, as the tests' isolated_script.py does)
    argv = [sys.executable, "tests/isolated_script.py", scratch / "outputs", "training_script_cora.py",
            "--dataset_name", graph, "--fanouts", "5", "5", "--batch_size", "512", "--num_of_epochs", "1",
            "--eval_chunk_size", "2000", "--no_save_binary", "--console_log_freq", "1", "--run_name", "bounded"]
    still_cached = evict_from_page_cache(graph)
    started = time.perf_counter()
    done, peak, oom_kills, charged = run_under_memory_limit(argv, limit, cwd=Path(__file__).resolve().parent.parent,
                                                            env=dict(os.environ, OMP_NUM_THREADS="2"))
    shutil.rmtree(scratch / "outputs", ignore_errors=True)
    accuracy = next((line for line in done.stdout.splitlines() if "Test accuracy" in line), None)
    return dict(limit_mib=limit // 2 ** 20, files_over_limit=round(graph_bytes / limit, 2),
                cached_before_mib=round(still_cached / 2 ** 20), exit_code=done.returncode,
                peak_mib=round(peak / 2 ** 20), charged_mib=round(charged / 2 ** 20), oom_kills=oom_kills,
                wall_s=round(time.perf_counter() - started), result=accuracy or done.stderr[-300:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--folder", required=True, help="where the graphs are written (and deleted after)")
    parser.add_argument("--bounded_mib", type=positive_int, default=None,
                        help="also train each graph whose files are at least 3x this many MiB under this memory "
                             "limit (root, cgroup v1)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the graphs written, and use a graph already in the folder instead of writing it")
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)  # (the child: one graph)
    parser.add_argument("--in_memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.in_memory)))
        return
    from utils.datasets.sbm_graph import write_sbm_disk_graph
    rows = []
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for num_nodes in args.sizes:
        folder = Path(args.folder) / f"sbm_{num_nodes}"
        started = time.perf_counter()
        if args.keep and (folder / "header.json").is_file():
            written = "kept from an earlier run"
        else:
            write_sbm_disk_graph(folder, num_nodes, split=(0.01, 0.001, 0.001), log=lambda *_: None)
            written = round(time.perf_counter() - started, 1)
        size = sum(path.stat().st_size for path in folder.iterdir())
        row = dict(nodes=num_nodes, file_bytes=size, write_s=written)
        try:
            for mode in ("disk", "memory"):
                if mode == "memory" and size > memory / 3:
                    row[mode] = "does not fit"
                    continue
                command = [sys.executable, "-m", "benchmarks.disk_scaling", "--folder", args.folder, "--measure",
                           str(folder)] + (["--in_memory"] if mode == "memory" else [])
                done = subprocess.run(command, capture_output=True, text=True)
                row[mode] = json.loads(done.stdout.splitlines()[-1]) if done.returncode == 0 else done.stderr[-300:]
            if args.bounded_mib:
                row["bounded"] = bounded_training(folder, size, args.bounded_mib * 2 ** 20, Path(args.folder))
        finally:
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| nodes | files | written in | where | open | anonymous memory before / peak | step (median, p95) | "
          "epoch |\n|---|---|---|---|---|---|---|---|")
    for row in rows:
        written = f"{row['write_s']} s" if isinstance(row["write_s"], float) else row["write_s"]
        start = f"| {row['nodes']:,} | {row['file_bytes'] / 2 ** 30:.2f} GiB | {written} |"
        for mode in ("disk", "memory"):
            values = row[mode]
            if not isinstance(values, dict):
                print(f"{start} {mode} | {values} | | | |")
                continue
            opened = values["open_s"] if mode == "disk" else values["load_s"]
            print(f"{start} {mode} | {opened} s | {values['anon_before_mib']} / {values['anon_peak_mib']} MiB | "
                  f"{values['step_ms']}, {values['step_p95_ms']} ms | {values['epoch_s']} s "
                  f"({values['steps_per_epoch']} steps) |")
        if "bounded" in row:
            print(f"\n{row['nodes']:,} nodes under a memory limit: {row['bounded']}")


if __name__ == "__main__":
    main()
