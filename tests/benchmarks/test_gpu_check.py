"""benchmarks/gpu_check.py on the CPU (--quick): the script that checks a GPU runs, so that it never rots."""

import json

import pytest

from benchmarks import gpu_check


@pytest.mark.slow
def test_the_gpu_check_passes_on_the_cpu(cora_data_dir, tmp_path, capsys):
    output = tmp_path / "check.json"
    assert gpu_check.main(["--device", "cpu", "--quick", "--data_dir", str(cora_data_dir), "--output",
                           str(output)]) == 0
    rows = json.loads(output.read_text())["rows"]
    status = {row["check"]: row["status"] for row in rows}
    for name in ("fast ops", "layers", "large graph", "host syncs", "precision", "determinism"):
        assert status[name] == "pass", (name, rows)
    assert next(row for row in rows if row["check"] == "host syncs")["syncs_per_warm_step"] == {"gat": 0, "gatv2": 0}
    assert [row["detail"].split(":")[0] for row in rows if row["check"] == "speed"] == [
        "Cora", "random graph, 10,000 nodes"]
    assert "| host syncs | pass |" in capsys.readouterr().out
