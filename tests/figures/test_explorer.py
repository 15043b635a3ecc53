"""The attention explorer: one self-contained page per trained model, checked in a real browser (headless Chromium
through Selenium, Debian's chromium and chromium-driver) against the model's own attention."""

import os
import shutil

import pytest
import torch

import playground
from models import Graph
from utils import paths
from utils.datasets.graph import sparsify_if_mostly_zero
from utils.figures import explorer
from utils.runs.checkpoints import model_from_checkpoint

CHROMEDRIVER = "/usr/bin/chromedriver"


def test_wrong_input_is_one_line_before_the_model_runs(cora_data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(explorer, "Graph", lambda *a, **k: pytest.fail("the model ran"))
    for argv, expected in (
            (["--model_name", "no_such_run"], "error: no checkpoint at "),
            (["--model_name", str(paths.PRETRAINED_CORA), "--nodes", "5", "99999"],
             "error: --nodes: node 99999 is not in the graph (ids 0 to 2707)"),
            (["--model_name", str(paths.PRETRAINED_CORA), "--nodes", *map(str, range(501))],
             "error: --nodes asks for 501 nodes; a page carries at most 500")):
        with pytest.raises(SystemExit) as exit_info:
            playground.main(["explore", "--data_dir", str(cora_data_dir), "--output", str(tmp_path / "x.html"), *argv])
        message = str(exit_info.value.code)
        assert message.startswith(expected) and "\n" not in message, message
    assert not (tmp_path / "x.html").exists()


def test_a_graph_past_the_whole_graph_limit_carries_the_neighbourhoods_of_some_nodes(cora_data_dir, monkeypatch):
    monkeypatch.setattr(explorer, "WHOLE_GRAPH_EDGES", 1000)
    data = explorer.explorer_data_for_run(paths.PRETRAINED_CORA, cora_data_dir, nodes=[1358, 7], log=lambda *_: None)
    carried = data.node_ids.tolist()
    assert {1358, 7} <= set(carried) and len(carried) < 2708 and "this page carries 2 of its nodes" in data.note
    # Every edge into a node within one hop of them (the model has 2 layers), with the whole graph's attention.
    target = data.node_ids[data.edge_index[1]]
    assert int((target == 1358).sum()) == 169 and data.complete[carried.index(1358)]
    assert 0 < int(data.complete.sum()) < len(carried)
    defaults = explorer.explorer_data_for_run(paths.PRETRAINED_CORA, cora_data_dir, log=lambda *_: None)
    assert 1358 in defaults.node_ids.tolist() and "this page carries 40 of its nodes" in defaults.note


def browser():
    """Headless Chromium, or a skip (a failure in CI, which installs it: .ci/run)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    if webdriver is None or not shutil.which("chromium") or not os.path.exists(CHROMEDRIVER):
        message = "needs selenium and Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.mark.slow
def test_the_page_in_a_real_browser_holds_the_models_attention(cora, cora_data_dir, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait
    page = explorer.explore(str(paths.PRETRAINED_CORA), tmp_path / "cora.html", cora_data_dir, log=lambda *_: None)
    assert page.stat().st_size < 2_000_000  # every layer and head of Cora's whole graph
    model, _ = model_from_checkpoint(paths.PRETRAINED_CORA)
    with torch.no_grad():
        _, attention = model(sparsify_if_mostly_zero(cora.node_features), Graph(cora.edge_index, cora.num_nodes),
                             return_attention_weights=True)
    column = {(s, t): e for e, (s, t) in enumerate(cora.edge_index.t().tolist())}

    driver = browser()
    try:
        driver.get(page.as_uri())
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return window.explorer && window.explorer.ready"))
        box = driver.find_element(By.ID, "node-input")  # pick a node as a user does: its id, then Enter
        box.clear()
        box.send_keys("306", Keys.ENTER)
        checked = 0
        for layer, head in ((0, "3"), (1, "0"), (0, "mean")):
            Select(driver.find_element(By.ID, "layer-select")).select_by_value(str(layer))
            Select(driver.find_element(By.ID, "head-select")).select_by_value(head)
            assert driver.execute_script("return explorer.state()") == {
                "node": 306, "layer": layer, "head": "mean" if head == "mean" else int(head)}
            shown = driver.execute_script("return explorer.shownEdges()")
            assert len(shown) > 20 and any(edge["target"] == 306 for edge in shown)
            for edge in shown:
                values = attention[layer][column[edge["source"], edge["target"]]]
                expected = values.mean() if head == "mean" else values[int(head)]
                assert abs(edge["attention"] - float(expected)) < 1e-6, (layer, head, edge)
                checked += 1
        driver.find_element(By.CSS_SELECTOR, "#top-degree span").click()  # a click picks the hub
        assert driver.execute_script("return explorer.state().node") == 1358
        driver.find_element(By.ID, "tab-entropy").click()
        bars = driver.find_elements(By.CSS_SELECTOR, "rect.learned-bar")
        assert len(bars) == 60  # 30 bins for each of the 2 layers
        tallest = max(bars, key=lambda bar: float(bar.get_attribute("height")))
        tallest.click()
        assert "nodes" in driver.find_element(By.ID, "histograms").text
        driver.save_screenshot(str(tmp_path / "explorer.png"))
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
    assert checked > 100 and (tmp_path / "explorer.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_ppi_page_shows_one_label_at_a_time_in_a_real_browser(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from utils.datasets.ppi_synthetic import write_synthetic_ppi
    from utils.training.many_graphs import train_many_graphs
    write_synthetic_ppi(tmp_path / "ppi", graphs_per_split=(3, 1, 2), nodes_per_graph=(30, 40))
    train_many_graphs(dict(num_of_epochs=2, hidden_features=8, console_log_freq=0, checkpoint_freq=0,
                           data_dir=str(tmp_path), progress_bar=False, run_name="ppi_page"), log=lambda *_: None)
    page = explorer.explore("ppi_page", tmp_path / "ppi.html", tmp_path, graph_index=1, log=lambda *_: None)
    driver = browser()
    try:
        driver.get(page.as_uri())
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return window.explorer && window.explorer.ready"))
        assert "test graph 2" in driver.find_element(By.ID, "title").text
        Select(driver.find_element(By.ID, "label-select")).select_by_value("7")
        Select(driver.find_element(By.ID, "colour-select")).select_by_value("correct")
        details = driver.find_element(By.ID, "details").text
        assert "of 121 right" in details and "label 7: true" in details
        assert len(driver.execute_script("return explorer.shownEdges()")) > 3
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
