"""Sparse input features (a bag-of-words input such as Cora's is 1.3 % non-zero): the layers take them as a
sparse COO or CSR tensor, and a CSR input carries what its projection's backward pass needs.

    features = csr_features(dense_features)   # a CSR tensor with its transposed pattern built once, here

The projection's backward pass sums over X^T (models/autograd_functions.py, _SparseCSRProjection), whose pattern
(X's non-zeros in column-major order) depends only on where X's non-zeros are. `csr_features` builds it once and
the tensor carries it (as the attribute `transposed_pattern`); a CSR tensor without it gets it built on every
call, correct but slower. Dropout changes the values, never the pattern.
"""

import warnings

import torch


def is_sparse(tensor):
    return tensor.layout != torch.strided


def csr_features(features):
    """features (dense, COO or CSR) as a sparse CSR tensor carrying its transposed pattern."""
    if features.layout != torch.sparse_csr:
        with warnings.catch_warnings():  # "sparse CSR support is in beta": it works for what we use
            warnings.simplefilter("ignore", UserWarning)
            features = features.to_sparse_csr()
    features.transposed_pattern = transposed_csr_pattern(features)
    return features


def transposed_pattern_of(features):
    """The transposed pattern a CSR input carries (csr_features), or built now for one that carries none."""
    pattern = getattr(features, "transposed_pattern", None)
    return pattern if pattern is not None else transposed_csr_pattern(features)


def transposed_csr_pattern(features):
    """(crow, column-of-X^T = row of X, order) of X^T: X's nonzeros in column-major order."""
    crow, col = features.crow_indices(), features.col_indices()
    num_rows, num_cols = features.shape
    rows = torch.repeat_interleave(torch.arange(num_rows, device=crow.device), crow.diff())
    order = torch.argsort(col * num_rows + rows)
    crow_t = torch.zeros(num_cols + 1, dtype=torch.long, device=crow.device)
    crow_t[1:] = torch.cumsum(torch.bincount(col, minlength=num_cols), 0)
    return crow_t, rows.index_select(0, order), order


def csr_with_values(csr, values):
    """The same sparsity pattern as `csr`, with new values (e.g. after dropout)."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": it works for what we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(csr.crow_indices(), csr.col_indices(), values, csr.shape,
                                       check_invariants=False)
