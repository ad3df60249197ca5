"""The MLflow UI in a real headless browser (Debian's chromium driven by Playwright): from the
experiments page to the evaluations' runs table with PSNR shown, a run's sample grid, and NFE 5
compared with NFE 20. Screenshots go to results/mlflow-ui/.

The store is made here: two evaluation runs of one task whose "restorations" are stand-ins (the
clean photo plus noise, less at NFE 20), so the test needs no training; the pages are MLflow's own.
Skipped, with the reason, where chromium or playwright is not installed (.ci/run installs both).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow_server import start_server
from test_tracking_data import make_run

from i2sb.tracking import track

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(__file__).resolve().parents[1] / "results" / "mlflow-ui"
# No network, no GPU, no background services: the browser only talks to the local server.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)"),
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (pip)"),
]


def _photos(count: int = 8, size: int = 64) -> np.ndarray:
    """Real photos (scikit-image, offline) as uint8 (N, 3, size, size)."""
    from skimage import data
    from skimage.transform import resize

    names = ["astronaut", "chelsea", "coffee", "rocket", "retina", "immunohistochemistry"]
    images = [resize(getattr(data, n)()[..., :3], (size, size), anti_aliasing=True) for n in names]
    stack = (np.stack(images * 2)[:count] * 255).round().astype(np.uint8)
    return stack.transpose(0, 3, 1, 2)


def _stand_in_samples(path: Path, noise: float) -> None:
    """Replace the images of a samples file: clean photos, 4x pooled inputs, noisy 'restorations'."""
    with np.load(path) as npz:
        arrays = dict(npz)
    clean = _photos()
    n, c, h, w = clean.shape
    pooled = clean.reshape(n, c, h // 4, 4, w // 4, 4).mean((3, 5))
    degraded = pooled.repeat(4, 2).repeat(4, 3).round().astype(np.uint8)
    rng = np.random.default_rng(0)
    recon = np.clip(clean + rng.normal(0, noise, clean.shape), 0, 255).astype(np.uint8)
    arrays |= {"clean": clean, "degraded": degraded, "recon": recon}
    arrays |= {"indices": np.arange(n), "labels": np.zeros(n, dtype=np.int64)}
    np.savez(path, **arrays)


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{root}/mlflow.db"
    tracked = {}
    for nfe, psnr, noise in ((5, 21.5, 40.0), (20, 24.25, 12.0)):
        args = make_run(root / "demo", task="sr4x-pool", nfe=nfe, psnr=psnr)
        _stand_in_samples(args["samples"], noise)
        tracked[nfe] = track(**args, tracking_uri=uri, artifact_root=str(root / "art"))
    server = start_server(root / "server", backend=uri)
    try:
        yield server.url, tracked
    finally:
        server.stop()


def test_from_the_experiments_page_to_psnr_a_sample_grid_and_nfe_5_against_20(ui):
    url, tracked = ui
    SHOTS.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=60_000)  # a busy 2-core machine renders slowly
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(f"{url}/#/experiments")
        expect(page.get_by_role("link", name="demo", exact=True)).to_be_visible()
        page.screenshot(path=SHOTS / "1-experiments.png")

        # The sidebar's "Model training" switch, then the experiment: its runs, not traces.
        page.get_by_text("Model training", exact=True).click()
        page.get_by_role("button", name="Close").click()  # the assistant panel
        page.get_by_role("link", name="demo", exact=True).click()
        expect(page).to_have_url(re.compile(r"#/experiments/\d+/runs"))
        expect(page.get_by_text("Traces – No data available")).to_have_count(0)

        # The link `make demo` prints: our columns (PSNR, SSIM, NFE, task), ordered by NFE.
        page.goto(tracked[5]["runs_page"].replace("http://127.0.0.1:5000", url))
        expect(page.locator("[role=columnheader][col-id='metrics.`psnr`']")).to_be_visible()
        for nfe, psnr in ((5, "21.5"), (20, "24.25")):  # ag-grid: values in the centre rows
            values = page.locator(f".ag-center-cols-container [row-id='{tracked[nfe]['run_id']}']")
            expect(values).to_contain_text(psnr)
        row5 = page.get_by_role("row").filter(has_text="nfe5")  # the pinned rows: box and name
        row20 = page.get_by_role("row").filter(has_text="nfe20")
        page.screenshot(path=SHOTS / "2-runs-table.png")

        # One run's sample grid (clean | degraded | restored), in the run's artifacts.
        row5.get_by_role("link", name=re.compile("nfe5$")).click()
        page.get_by_role("tab", name="Artifacts").click()
        page.get_by_text("samples", exact=True).click()
        page.get_by_text("sample_grid.png").click()
        expect(page.get_by_alt_text("samples/sample_grid.png")).to_be_visible()
        page.screenshot(path=SHOTS / "3-sample-grid.png")

        # NFE 5 against NFE 20: tick both rows, Compare.
        page.goto(tracked[5]["runs_page"].replace("http://127.0.0.1:5000", url))
        for row in (row5, row20):
            row.get_by_role("checkbox").first.click()
        page.get_by_role("button", name="Compare").click()
        expect(page).to_have_url(re.compile("compare-runs"))
        expect(page.locator(".js-plotly-plot").first).to_be_visible()  # NFE against PSNR
        page.screenshot(path=SHOTS / "4-compare-nfe5-nfe20.png")
        # The metrics section: psnr of NFE 5 and of NFE 20 side by side.
        page.get_by_role("link", name="psnr", exact=True).scroll_into_view_if_needed()
        for psnr in ("21.5", "24.25"):
            expect(page.get_by_text(psnr, exact=True).first).to_be_visible()
        page.screenshot(path=SHOTS / "5-compare-metrics.png")
        browser.close()
    assert all((SHOTS / name).stat().st_size > 10_000 for name in (
        "1-experiments.png", "2-runs-table.png", "3-sample-grid.png", "4-compare-nfe5-nfe20.png",
        "5-compare-metrics.png"))  # fmt: skip
