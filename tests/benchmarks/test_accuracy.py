"""benchmarks/accuracy.py: every run reported as it ends, counted against the runs it will make."""

import re

from helpers import write_own_graph

from benchmarks import accuracy


def test_every_run_says_how_many_are_done_of_how_many(tmp_path, capsys):
    graph = str(write_own_graph(tmp_path / "own.npz", unlabelled=()))
    summaries = accuracy.main(["--datasets", graph, "--split", "random", "--splits", "2", "--inits", "2",
                               "--train_per_class", "5", "--val_per_class", "5",
                               "--max_epochs", "30"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] + "]" for line in lines] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert "split  0, seed   0: test acc" in lines[0] and "split  1, seed   1: test acc" in lines[3]
    assert all(int(re.search(r", (\d+) epochs,", line).group(1)) <= 30 for line in lines)
    assert 0.0 <= summaries[graph]["min"] <= summaries[graph]["max"] <= 1.0
