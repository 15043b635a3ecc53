"""The numbers a run reports: accuracy (one label per node) and micro-F1 (many labels per node).

Each is written so that several processes can add up their parts before dividing (counts, not ratios).
"""


def accuracy(logits, labels):
    """The fraction of nodes whose highest logit is their label (a float)."""
    return (logits.argmax(dim=-1) == labels).float().mean().item()


def num_correct(logits, labels):
    """How many nodes' highest logit is their label (an int): accuracy's numerator, for summing over batches."""
    return (logits.argmax(dim=-1) == labels).sum().item()


def micro_f1(labels, logits):
    """Micro-averaged F1 over every (node, label) pair, as in the paper; a logit > 0 predicts 1."""
    return micro_f1_from_counts(*micro_f1_counts(labels, logits))


def micro_f1_counts(labels, logits):
    """(true positives, false positives, false negatives) over every (node, label) pair: the sums behind
    micro-F1, which several processes can add up before dividing."""
    predicted, actual = logits.detach() > 0, labels > 0.5
    return ((predicted & actual).sum().item(), (predicted & ~actual).sum().item(),
            (~predicted & actual).sum().item())


def micro_f1_from_counts(true_pos, false_pos, false_neg):
    """Micro-F1 = 2 TP / (2 TP + FP + FN): scikit-learn's micro average, 0 when there is nothing to count."""
    denominator = 2 * true_pos + false_pos + false_neg
    return 2 * true_pos / denominator if denominator else 0.0
