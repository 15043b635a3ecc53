"""Gathers and segment sums over edges, in chunks of bounded size: the building blocks of the edge layouts
(models/layouts.py) and of the hand-written backward passes (models/autograd_functions.py).

- *Segment sums* with F.embedding_bag(mode="sum"): the same additions in the same order as index_add_, so
  bit-identical, and much faster on the CPU for a few heads per row.
- *Chunks* of at most CHUNK_ELEMENTS floats for every temporary that grows with E: malloc reuses such blocks,
  where a larger one is fresh memory whose pages the kernel must zero on every step.
"""

import torch
import torch.nn.functional as F

# On the CPU, temporaries of at most this many floats (16 MiB): malloc keeps reusing such blocks, where every
# larger one is fresh memory whose pages the kernel must zero on every step.
CHUNK_ELEMENTS = 1 << 22
# On CUDA the caching allocator reuses blocks of any size, so chunks only bound the memory of the largest
# temporaries (1 GiB of float32): one chunk, PyTorch's plain kernels, up to a few 10^7 edges x heads.
CUDA_CHUNK_ELEMENTS = 1 << 28


def chunk_elements(device):
    """How many floats one chunk of a temporary may hold on this device."""
    return CHUNK_ELEMENTS if device.type == "cpu" else CUDA_CHUNK_ELEMENTS


def index_rows(values, index, out=None):
    """values.index_select(0, index) (into `out` if given); rows of a single value (one head) go through a
    flat view, which PyTorch's CPU kernel gathers much faster than one-element rows."""
    if values.dim() == 2 and values.shape[1] == 1 and values.is_contiguous():
        flat_out = None if out is None else out.view(-1)
        return torch.index_select(values.view(-1), 0, index, out=flat_out).view(-1, 1)
    return torch.index_select(values, 0, index, out=out)


def gathered_in_chunks(values, index):
    """Yield (chunk, values.index_select(0, index[chunk])) for consecutive slices `chunk` of the index,
    each gathered into the same buffer (valid until the next chunk)."""
    num_rows, row_elements = index.numel(), max(1, values[0].numel())
    step = max(1, min(num_rows, chunk_elements(values.device) // row_elements))
    if step == num_rows:  # one chunk (Cora): a plain gather is quicker than the buffer's bookkeeping
        yield slice(None), index_rows(values, index)
        return
    buffer = values.new_empty((step,) + values.shape[1:])
    for start in range(0, num_rows, step):
        chunk = slice(start, min(start + step, num_rows))
        yield chunk, index_rows(values, index[chunk], out=buffer[:chunk.stop - start])


def segment_sum(per_edge, edge_ids, offsets):
    """Segment sums of the rows of per_edge [E, H] listed in edge_ids: segment i sums the rows
    edge_ids[offsets[i]:offsets[i + 1]] (arange(E): consecutive rows; an edge order: a grouping).

    F.embedding_bag gathers and adds the rows in order: the same additions in the same order as
    index_add_ (bit-identical results), and much faster on the CPU for a few heads per row."""
    return F.embedding_bag(edge_ids, per_edge, offsets[:-1], mode="sum")
