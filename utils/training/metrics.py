"""The numbers a run reports: accuracy (one label per node) and micro-F1 (many labels per node).

Each is written so that several processes can add up their parts before dividing (counts, not ratios).
"""

import torch


def accuracy(logits, labels):
    """The fraction of nodes whose highest logit is their label (a float)."""
    return accuracy_on_device(logits, labels).item()


def accuracy_on_device(logits, labels):
    """accuracy as a 0-dim float32 tensor on the logits' device: reading it is left to the caller (a training loop
    reads its numbers once per epoch, not once per step, so that a GPU never waits for the host in between)."""
    return (logits.argmax(dim=-1) == labels).float().mean()


def num_correct_on_device(logits, labels):
    """How many nodes' highest logit is their label (a 0-dim int64 tensor): accuracy's numerator, for summing
    over batches."""
    return (logits.argmax(dim=-1) == labels).sum()


def micro_f1(labels, logits):
    """Micro-averaged F1 over every (node, label) pair, as in the paper; a logit > 0 predicts 1."""
    return micro_f1_from_counts(*micro_f1_counts(labels, logits))


def micro_f1_counts(labels, logits):
    """(true positives, false positives, false negatives) over every (node, label) pair: the sums behind
    micro-F1, which several processes can add up before dividing."""
    return tuple(micro_f1_counts_on_device(labels, logits).tolist())


def micro_f1_counts_on_device(labels, logits):
    """micro_f1_counts as an int64 tensor [3] on the logits' device."""
    predicted, actual = logits.detach() > 0, labels > 0.5
    return torch.stack([(predicted & actual).sum(), (predicted & ~actual).sum(), (~predicted & actual).sum()])


def micro_f1_from_counts(true_pos, false_pos, false_neg):
    """Micro-F1 = 2 TP / (2 TP + FP + FN): scikit-learn's micro average, 0 when there is nothing to count."""
    denominator = 2 * true_pos + false_pos + false_neg
    return 2 * true_pos / denominator if denominator else 0.0
