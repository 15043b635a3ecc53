"""Mean, spread and 95 % confidence interval of a handful of runs (seeds, splits): the numbers a results table quotes."""

import math

from scipy.stats import t as student_t


def summarize(values):
    """{mean, std, ci95_low, ci95_high, n} of `values` (a non-empty sequence of numbers).

    std is the sample standard deviation (ddof=1). The interval is the mean's 95 % confidence interval from
    Student's t distribution with n - 1 degrees of freedom: mean +- t.ppf(0.975, n - 1) * std / sqrt(n); with
    few runs t is much larger than 1.96 (12.71 for n = 2, 2.26 for n = 10). With n = 1 there is no spread
    to estimate: std is reported as 0 and the interval as the mean itself, which says nothing about
    uncertainty.
    """
    values = [float(value) for value in values]
    n = len(values)
    if n == 0:
        raise ValueError("summarize needs at least one value")
    mean = math.fsum(values) / n
    if n == 1:
        return dict(mean=mean, std=0.0, ci95_low=mean, ci95_high=mean, n=1)
    std = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (n - 1))
    half_width = student_t.ppf(0.975, n - 1) * std / math.sqrt(n)
    return dict(mean=mean, std=std, ci95_low=mean - half_width, ci95_high=mean + half_width, n=n)


def format_summary(summary, scale=100):
    """'83.21 ± 1.16 (95 % CI 82.38-84.04, n=10)': a summarize() result, values multiplied by `scale`
    (100: fractions as percentages)."""
    mean, std = scale * summary["mean"], scale * summary["std"]
    low, high = scale * summary["ci95_low"], scale * summary["ci95_high"]
    return f"{mean:.2f} ± {std:.2f} (95 % CI {low:.2f}-{high:.2f}, n={summary['n']})"
