"""`blocknas dashboard` driven in a real headless Chromium (Debian's chromium and chromium-driver, through
Selenium; nothing is downloaded): every page loads, a front shows the points `fronts show --json` prints,
and moving the budget shows the architecture `blocknas switch` answers."""

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from blocknas.orchestrator.config import load_settings
from tests.conftest import listening_sockets, run_cli, session_pids, start_cli, stop_session, summary_of, wait_for

pytestmark = pytest.mark.slow
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip(
        "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; "
        "`make test` installs them where it may)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

COSTS = {"s0": {"skip": 0.0, "conv_k3": 0.4, "sep_k3": 0.2}, "s1": {"conv_k3": 0.9, "sep_k3": 0.3, "mbconv_k3_e2": 0.5}}
FRONT_POINTS = """return document.querySelector('#front-graph .js-plotly-plot').data
    .filter(t => (t.name || '').startsWith('front (') || (t.name || '').startsWith('front, '))
    .flatMap(t => t.x.map((x, k) => [t.customdata[k], x, t.y[k]]));"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    assert run_cli(home, "run", "experiment=smoke", "cluster.num_cpus=2").returncode == 0
    path = home / "phone.csv"
    path.write_text(
        "slot,block,metric,value\nfixed,,latency_ms,0.25\n"
        + "".join(f"{s},{b},latency_ms,{v}\n" for s, blocks in COSTS.items() for b, v in blocks.items())
    )
    assert run_cli(home, "targets", "add", "phone", "--file", str(path)).returncode == 0
    shown = run_cli(home, "fronts", "show", "phone", "experiment=smoke", "--json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    port = free_port()
    proc = start_cli(home, "dashboard", "--port", str(port), "experiment=smoke")
    try:
        wait_for(
            lambda: any(p == port for _, p, _ in listening_sockets(session_pids(proc.pid))),
            120,
            "the dashboard to listen",
            proc,
        )
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
        try:
            yield home, proc, port, driver, json.loads(shown.stdout)
        finally:
            driver.quit()
    finally:
        stop_session(proc)


def _open(driver, url: str, selector: str, timeout: float = 60):
    driver.get(url)
    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, selector)))


def test_it_listens_on_localhost_only(dashboard):
    _, proc, port, _, _ = dashboard
    sockets = listening_sockets(session_pids(proc.pid))
    assert sockets and all(address == "127.0.0.1" for address, _, _ in sockets), sockets


def _rows(driver, table_id: str) -> list[dict]:
    """The rows a page's table shows, each ``{column: text}`` (Dash's DataTable marks cells by column)."""
    return driver.execute_script(
        """return [...document.querySelectorAll(`#${arguments[0]} tr`)]
        .filter(r => r.querySelector('td[data-dash-column]'))
        .map(r => Object.fromEntries([...r.querySelectorAll('td[data-dash-column]')]
            .map(c => [c.getAttribute('data-dash-column'), c.innerText.trim()])));""",
        table_id,
    )


def test_experiments_and_their_block_tables(dashboard):
    _, _, port, driver, _ = dashboard
    table = _open(driver, f"http://127.0.0.1:{port}/", "#experiments td")
    assert [r["experiment"] for r in _rows(driver, "experiments")] == ["smoke"]
    table.find_element(By.XPATH, "//*[@id='experiments']//a[text()='smoke']").click()
    WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#blocks td")))
    rows = _rows(driver, "blocks")
    assert len(rows) == 6 and all(r["block"].startswith(("s0:", "s1:")) for r in rows)
    assert {"delta_vs_base", "delta_vs_context", "accuracy"} <= set(rows[0])


def test_the_dashboards_experiment_shows_each_blocks_value_and_cost_on_every_target(dashboard):
    from blocknas.workers.costs import analytic_costs

    _, _, port, driver, _ = dashboard
    _open(driver, f"http://127.0.0.1:{port}/?e=smoke", "#blocks td")
    rows = _rows(driver, "blocks")
    assert len(rows) == 6 and {"value", "cost.flops", "cost.params", "cost.local_cpu"} <= set(rows[0])
    space = load_settings(["experiment=smoke"]).space
    params = analytic_costs(space, "params").blocks
    for row in rows:
        slot, choice = row["block"].split(":")
        index = [s.name for s in space.slots].index(slot)
        assert float(row["cost.params"]) == pytest.approx(params[index, choice], rel=1e-5)
        assert float(row["cost.local_cpu"]) > 0
        # one context network: the table's value is the block's swap-in delta against it
        assert float(row["value"].replace("−", "-")) == pytest.approx(
            float(row["delta_vs_context"].replace("−", "-")), abs=1e-3
        )


def test_targets_and_their_versions(dashboard):
    _, _, port, driver, front = dashboard
    _open(driver, f"http://127.0.0.1:{port}/targets", "#targets td")
    assert [(r["target"], r["version"]) for r in _rows(driver, "targets")] == [("phone", front["target_version"][:12])]
    assert front["target_version"][:12] in [r["version"] for r in _rows(driver, "versions")]


def test_the_front_shows_the_points_fronts_show_prints(dashboard):
    _, _, port, driver, front = dashboard
    _open(driver, f"http://127.0.0.1:{port}/fronts?t=phone", "#front-graph .js-plotly-plot")
    shown = WebDriverWait(driver, 30).until(lambda d: d.execute_script(FRONT_POINTS))
    expected = [[" ".join(p["blocks"]), p["cost"], p["predicted_accuracy"]] for p in front["points"]]
    assert sorted(map(tuple, shown)) == pytest.approx(sorted(map(tuple, expected)))
    assert len(shown) == len(front["points"]) >= 3


def _answer_for(driver, budget: float) -> tuple[str, str]:
    """(the answer element's id, its text) once the answer for ``budget`` shows, read inside the wait: Dash
    may render the answer again at any moment, which leaves an element found earlier stale."""
    field = driver.find_element(By.ID, "budget-input")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE, str(budget), Keys.ENTER)

    def shown(d):
        try:
            found = d.find_elements(By.CSS_SELECTOR, "#answer-blocks, #answer-error")
            if found and f"<= {budget:g}" in d.find_element(By.ID, "answer").text:
                return found[0].get_attribute("id"), found[0].text
        except StaleElementReferenceException:
            pass
        return False

    return WebDriverWait(driver, 30).until(shown)


def test_moving_the_budget_shows_what_switch_answers(dashboard):
    home, _, port, driver, front = dashboard
    _open(driver, f"http://127.0.0.1:{port}/fronts?t=phone", "#budget-input")
    costs = [p["cost"] for p in front["points"]]
    budgets = [costs[0], (costs[0] + costs[1]) / 2, costs[len(costs) // 2] + 1e-3, costs[-1] + 1.0]
    for budget in budgets:
        switched = run_cli(home, "switch", "phone", "--budget", repr(budget), "experiment=smoke", "--json")
        assert switched.returncode == 0, switched.stderr
        assert _answer_for(driver, budget)[1] == " ".join(json.loads(switched.stdout)["blocks"]), budget
    # the slider moves the budget too: its new value is answered as switch answers it
    thumb = driver.find_element(By.CSS_SELECTOR, "#budget-slider [role=slider]")
    thumb.send_keys(Keys.HOME)
    WebDriverWait(driver, 30).until(
        lambda d: float(d.find_element(By.ID, "budget-input").get_attribute("value")) == pytest.approx(costs[0])
    )
    switched = json.loads(
        run_cli(home, "switch", "phone", "--budget", repr(costs[0]), "experiment=smoke", "--json").stdout
    )
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.ID, "answer-blocks").text == " ".join(switched["blocks"])
    )


def test_a_budget_nothing_fits_says_the_smallest_feasible_cost(dashboard):
    _, _, port, driver, front = dashboard
    _open(driver, f"http://127.0.0.1:{port}/fronts?t=phone", "#budget-input")
    cheapest = front["points"][0]["cost"]
    shown, text = _answer_for(driver, cheapest / 2)
    assert shown == "answer-error" and f"smallest feasible latency_ms cost is {cheapest:g}" in text


def test_verified_and_history_pages(dashboard):
    _, _, port, driver, front = dashboard
    assert (
        "No network verified yet"
        in _open(driver, f"http://127.0.0.1:{port}/verified", "#verified").find_element(By.XPATH, "..").text
    )
    _open(driver, f"http://127.0.0.1:{port}/history", "#history td")
    rows = _rows(driver, "history")
    assert any(r["target"] == "phone" and r["version"] == front["target_version"][:12] for r in rows)
    assert sum(r["experiment"] == "smoke" for r in rows) >= 4  # the run's three fronts and phone's


def test_an_updated_target_shows_its_new_front_at_the_next_load(dashboard):
    home, _, port, driver, _ = dashboard
    for scale in (1.0, 3.0):  # registered, then updated to a new version with other costs
        path = home / "watch.csv"
        path.write_text(
            "slot,block,metric,value\n"
            + "".join(
                f"{s},{b},latency_ms,{v * scale if s == 's1' else v}\n"
                for s, blocks in COSTS.items()
                for b, v in blocks.items()
            )
        )
        verb = "add" if scale == 1.0 else "update"
        assert run_cli(home, "targets", verb, "watch", "--file", str(path)).returncode == 0
        shown = json.loads(run_cli(home, "fronts", "show", "watch", "experiment=smoke", "--json").stdout)
        _open(driver, f"http://127.0.0.1:{port}/fronts?t=watch", "#front-graph .js-plotly-plot")
        expected = sorted((" ".join(p["blocks"]), p["cost"], p["predicted_accuracy"]) for p in shown["points"])
        WebDriverWait(driver, 30).until(
            lambda d, e=expected: sorted(map(tuple, d.execute_script(FRONT_POINTS))) == pytest.approx(e)
        )
        assert shown["target_version"][:12] in driver.find_element(By.TAG_NAME, "h2").text


def test_a_runs_own_target_shows_its_front_and_answers_budgets_as_solve(dashboard):
    home, _, port, driver, _ = dashboard
    shown = run_cli(home, "fronts", "show", "local_cpu", "experiment=smoke", "--json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    front = json.loads(shown.stdout)
    _open(driver, f"http://127.0.0.1:{port}/fronts?r=local_cpu", "#front-graph .js-plotly-plot")
    expected = sorted((" ".join(p["blocks"]), p["cost"], p["predicted_accuracy"]) for p in front["points"])
    WebDriverWait(driver, 30).until(
        lambda d: sorted(map(tuple, d.execute_script(FRONT_POINTS))) == pytest.approx(expected)
    )
    costs = [p["cost"] for p in front["points"]]
    budget = (costs[0] + costs[-1]) / 2
    solved = run_cli(home, "solve", "experiment=smoke", f"solver.budgets.local_cpu={budget!r}")
    assert solved.returncode == 0, solved.stderr[-2000:]
    assert _answer_for(driver, budget)[1] == " ".join(summary_of(solved)["best"]["blocks"])
    shown_answer = driver.find_element(By.ID, "answer-json").get_attribute("textContent")
    assert json.loads(shown_answer) == summary_of(solved)["best"]["answer"]  # one answer schema (docs/answers.md)
    shown, text = _answer_for(driver, costs[0] / 2)
    assert shown == "answer-error" and f"smallest feasible local_cpu cost is {costs[0]:g}" in text
    # the history links each of the run's fronts to this page
    history = _open(driver, f"http://127.0.0.1:{port}/history", "#history td")
    assert history.find_elements(By.XPATH, "//*[@id='history']//a[@href='/fronts?r=local_cpu']")


GRID_ROWS = """const cells = id => Object.fromEntries([...document.querySelectorAll(`.ag-cell[col-id="${id}"]`)]
    .map(c => [c.closest(".ag-row").getAttribute("row-index"), (c.querySelector("a") || c).textContent]));
const names = cells('attributes.`Run Name`'), values = cells('metrics.`value`');
return Object.keys(names).sort((a, b) => a - b).map(k => [names[k], values[k]]);"""


def test_the_mlflow_link_a_run_prints_opens_its_block_runs_flat_with_their_values(dashboard):
    """MLflow's own UI (`mlflow ui`, as the run says to start it) in the same Chromium: the link opens the
    runs table in model-training mode on the search's saved view, every block run flat, sorted by value."""
    home, _, _, driver, _ = dashboard
    summary = json.loads(sorted((home / "outputs" / "smoke").glob("run-*/summary.json"))[-1].read_text())
    port = free_port()
    ui = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "ui",
            "--backend-store-uri",
            f"sqlite:///{home}/.blocknas/mlflow.db",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: any(p == port for _, p, _ in listening_sockets(session_pids(ui.pid))),
            120,
            "mlflow ui to listen",
            ui,
        )
        driver.get(summary["mlflow_block_view"].replace("127.0.0.1:5000", f"127.0.0.1:{port}"))
        rows = WebDriverWait(driver, 120).until(
            lambda d: (r := d.execute_script(GRID_ROWS)) and len(r) >= 6 and all(v for _, v in r) and r
        )
        names = [name for name, _ in rows]
        assert sorted(names) == sorted(
            f"{slot}:{b}"
            for slot, blocks in {
                "s0": ["skip", "conv_k3", "sep_k3"],
                "s1": ["conv_k3", "sep_k3", "mbconv_k3_e2"],
            }.items()
            for b in blocks
        )
        values = [float(v) for _, v in rows]
        assert values == sorted(values, reverse=True)
        assert driver.find_elements(By.XPATH, "//*[text()='Model training']")
    finally:
        stop_session(ui)


TRACE_POINTS = """const g = document.querySelector(`#${arguments[0]} .js-plotly-plot`);
const t = g && g.data && g.data.find(t => t.name === arguments[1]);
return t ? t.x.length : -1;"""


def _number(text: str) -> float:
    return float(text.replace("\u2212", "-"))  # the table prints a minus sign


def test_verified_networks_show_measured_against_predicted(dashboard):
    """After a real refine round: the networks it verified, measured beside predicted, as the store holds them,
    in the table, the scatter, and as diamonds on the run's own front."""
    from blocknas.orchestrator.storage import PerformanceStore

    home, _, port, driver, _ = dashboard
    refined = run_cli(home, "run", "experiment=smoke", "cluster.num_cpus=2", "refine.rounds=1")
    assert refined.returncode == 0, refined.stderr[-3000:]
    results = PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db").all_network_results()
    assert results and all(r.predicted_accuracy is not None for r in results)
    _open(driver, f"http://127.0.0.1:{port}/verified", "#verified td")
    rows = WebDriverWait(driver, 30).until(lambda d: len(r := _rows(d, "verified")) == len(results) and r)
    shown = {r["network"]: (_number(r["measured"]), _number(r["predicted"])) for r in rows}
    assert shown.keys() == {r.network_key for r in results}
    for r in results:
        assert shown[r.network_key] == pytest.approx((r.accuracy, r.predicted_accuracy), rel=1e-5)
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(TRACE_POINTS, "verified-graph", "verified networks") == len(results)
    )
    _open(driver, f"http://127.0.0.1:{port}/fronts?r=local_cpu", "#front-graph .js-plotly-plot")
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(TRACE_POINTS, "front-graph", "verified (measured)") == len(results)
    )


def test_a_front_no_command_stored_is_solved_in_memory_and_not_written(dashboard, monkeypatch):
    from blocknas.dashboards.app import Views
    from blocknas.orchestrator.storage import PerformanceStore

    home, _, _, _, _ = dashboard
    monkeypatch.setenv("BLOCKNAS_HOME", str(home))
    overrides = ["experiment=smoke", "solver.max_points=3"]  # fronts of other inputs: none stored yet
    views = Views(load_settings(overrides, check_space=False), lambda: load_settings(overrides))
    store = PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db")
    stored_before = len(store.front_history())
    fronts = {name: views.front(kind, name) for kind, name in (("r", "local_cpu"), ("t", "phone"))}
    assert len(store.front_history()) == stored_before  # read-only: solving in memory wrote nothing
    for (kind, name), front in zip((("r", "local_cpu"), ("t", "phone")), fronts.values(), strict=True):
        assert front.origin.startswith("solved now, not stored")
        shown = run_cli(home, "fronts", "show", name, *overrides, "--json")
        assert shown.returncode == 0, shown.stderr[-2000:]
        points = [{k: v for k, v in p.items() if k != "answer"} for p in json.loads(shown.stdout)["points"]]
        assert points == front.points  # the stored points; `fronts show` adds each one's answer
        assert views.front(kind, name).origin.startswith("stored")  # now `fronts show` stored it
