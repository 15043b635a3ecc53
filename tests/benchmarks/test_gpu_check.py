"""benchmarks/gpu_check.py on the CPU (--quick): the script that checks a GPU runs, so that it never rots, and it keeps
to its time budget with every row so far on disk."""

import json
import time

import pytest

from benchmarks import gpu_check


@pytest.mark.slow
def test_the_gpu_check_passes_on_the_cpu(cora_data_dir, tmp_path, capsys):
    output = tmp_path / "check.json"
    assert gpu_check.main(["--device", "cpu", "--quick", "--data_dir", str(cora_data_dir), "--output",
                           str(output), "--budget_s", "900"]) == 0
    rows = json.loads(output.read_text())["rows"]
    status = {row["check"]: row["status"] for row in rows}
    for name in ("fast ops", "layers", "large graph", "host syncs", "precision", "determinism"):
        assert status[name] == "pass", (name, rows)
    syncs = next(row for row in rows if row["check"] == "host syncs")["syncs_per_warm_step"]
    assert syncs == {"full-batch gat": 0, "full-batch gatv2": 0, "sampled, new batch": 0, "PPI, new batch": 0}
    speed = [row for row in rows if row["check"].startswith("speed: ")]
    assert [row["check"] for row in speed] == [
        "speed: Cora, like for like (dense input, every node's logits, both sides)",
        "speed: Cora, as the training script runs it (IMP3: the nodes read only; CPU: sparse input)",
        "speed: Cora, bf16 (autocast; the attention stays float32)",
        "speed: Cora, fp16 (autocast; the attention stays float32)",
        "speed: power-law graph, 20,000 nodes (hubs)",
        "speed: random graph, 10,000 nodes", "speed: random graph, 30,000 nodes"]
    for row in speed:  # IMP3 and PyG each measured (PyG is in requirements-bench.txt; CI has it not: skipped there)
        assert row["IMP3"]["train_ms"] > 0 and row["IMP3"]["eval_ms"] > 0, row
    assert "| host syncs | pass |" in output.with_suffix(".md").read_text()
    assert "| host syncs | pass |" in capsys.readouterr().out


@pytest.mark.slow
def test_a_short_budget_ends_in_time_with_every_row_so_far(cora_data_dir, tmp_path):
    output = tmp_path / "check.json"
    started = time.monotonic()
    gpu_check.main(["--device", "cpu", "--quick", "--data_dir", str(cora_data_dir), "--output", str(output),
                    "--budget_s", "40"])
    assert time.monotonic() - started < 40 + 5  # (the last section is stopped at the budget; then the report)
    rows = json.loads(output.read_text())["rows"]
    assert rows[0]["check"] == "environment" and rows[0]["status"] == "info"
    assert any(row["status"] == "skipped" and row["detail"].startswith("the budget") for row in rows)
    for name, _ in gpu_check.SECTIONS:  # every section has its row: measured, failed, or skipped for the budget
        assert "PPI" in name or any(row["check"].startswith(name) for row in rows), (name, rows)


def test_a_section_that_crashes_is_one_failed_row_and_the_rest_still_run(tmp_path, monkeypatch):
    def crash(device, args):
        raise RuntimeError("CUDA error: device-side assert triggered\nmore lines")
    monkeypatch.setitem(gpu_check.SECTION_FUNCTIONS, "layers", crash)
    args = gpu_check.get_parser().parse_args(["--device", "cpu", "--section", "layers"])
    printed = []
    monkeypatch.setattr("builtins.print", lambda *a, **k: printed.append(" ".join(map(str, a))))
    assert gpu_check.run_section(args) == 0
    row = json.loads(printed[0][len(gpu_check.ROW_MARK):])
    assert row["status"] == "fail" and row["detail"] == "RuntimeError: CUDA error: device-side assert triggered"
