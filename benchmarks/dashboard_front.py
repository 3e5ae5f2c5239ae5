"""How long `blocknas dashboard` takes to show a large front, in headless Chromium (Debian's, via Selenium).

Registers a random Puzzle-format block library whose front has `--points` points (the solver's default
cap, 2,000), stores its front once (`blocknas fronts show`), starts the dashboard, and times, per load:
navigation until every front point is drawn (the Plotly graph's data holds them all), then a budget typed
in until the answer `switch` gives is on the page. Prints one JSON line.

    .venv/bin/python benchmarks/dashboard_front.py [--layers 40] [--variants 8] [--loads 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

COUNT = """const g = document.querySelector('#front-graph .js-plotly-plot');
return g && g.data ? g.data.filter(t => (t.name || '').startsWith('front ('))
    .reduce((n, t) => n + t.x.length, 0) : 0;"""


def library(layers: int, variants: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(layers):
        latency = rng.uniform(0.1, 2.0, variants)
        kl = np.maximum(0.0, 1.0 / (latency + 0.2) + rng.normal(0, 0.1, variants))
        out[f"layer_{i}"] = {
            f"v{j}": {
                "stats": {"runtime_ms": round(float(latency[j]), 5)},
                "metrics": {"kl_div": round(float(kl[j]), 5)},
            }
            for j in range(variants)
        }
    return out


def cli(home: Path, *args: str, **kwargs):
    env = {**os.environ, "BLOCKNAS_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "blocknas.orchestrator.cli", *args],
        env=env,
        cwd=home,
        text=True,
        capture_output=True,
        check=True,
        **kwargs,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=40)
    parser.add_argument("--variants", type=int, default=8)
    parser.add_argument("--points", type=int, default=2000, help="solver.max_points (the front's size cap)")
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    (home / "lib.json").write_text(json.dumps(library(args.layers, args.variants, args.seed)))
    cli(home, "targets", "add", "big", "--file", str(home / "lib.json"))
    started = time.perf_counter()
    front = json.loads(cli(home, "fronts", "show", "big", f"solver.max_points={args.points}", "--json").stdout)
    solve_s = time.perf_counter() - started
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "blocknas.orchestrator.cli",
            "dashboard",
            "--port",
            str(port),
            f"solver.max_points={args.points}",
        ],
        env={**os.environ, "BLOCKNAS_HOME": str(home)},
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        for _ in range(600):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        loads, answers = [], []
        costs = [p["cost"] for p in front["points"]]
        for k in range(args.loads):
            started = time.perf_counter()
            driver.get(f"http://127.0.0.1:{port}/fronts?t=big")
            WebDriverWait(driver, 300, poll_frequency=0.02).until(
                lambda d: d.execute_script(COUNT) == len(front["points"])
            )
            loads.append(time.perf_counter() - started)
            budget = costs[(k + 1) * len(costs) // (args.loads + 1)] + 1e-6
            field = driver.find_element(By.ID, "budget-input")
            started = time.perf_counter()
            field.send_keys(Keys.CONTROL, "a")
            field.send_keys(Keys.DELETE, repr(budget), Keys.ENTER)
            WebDriverWait(driver, 300, poll_frequency=0.02).until(
                lambda d, b=budget: f"<= {b:g}" in d.find_element(By.ID, "answer").text
            )
            answers.append(time.perf_counter() - started)
    finally:
        driver.quit()
        server.terminate()
        server.wait(30)
    print(
        json.dumps(
            {
                "front_points": len(front["points"]),
                "layers": args.layers,
                "variants": args.variants,
                "fronts_show_solve_s": round(solve_s, 2),
                "first_load_s": round(loads[0], 3),
                "warm_load_s_median": round(statistics.median(loads[1:] or loads), 3),
                "budget_answer_s_median": round(statistics.median(answers), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
