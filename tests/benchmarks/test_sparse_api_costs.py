"""benchmarks/sparse_api_costs.py: IMP4's step is split into the sparse API's pieces; IMP3's uses none of them."""

from benchmarks import sparse_api_costs


def test_imp4s_step_uses_the_sparse_api_and_never_coalesces(capsys):
    results = sparse_api_costs.main(["--workload", "scaling", "--num_nodes", "300", "--steps", "2", "--warmup", "1"])
    imp3, imp4 = results["IMP3"][0], results["IMP4"][0]
    for group in ("sparse softmax", "sparse @ dense", "sampled product", "values' gradient"):
        assert imp4.get(group, 0) > 0 and imp3.get(group, 0) == 0, group
    assert imp4.get("coalescing", 0) == 0  # the pattern is built coalesced once per graph, never per step
    assert imp4["everything else"] > 0 and imp3["everything else"] > 0
    assert "| sparse softmax |" in capsys.readouterr().out
