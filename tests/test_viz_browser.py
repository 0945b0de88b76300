"""The teaching page end to end in a real Chromium: served here on 127.0.0.1, driven by Playwright.

Uses Debian's chromium (never a downloaded browser). Outside CI the test skips
when /usr/bin/chromium is missing; in CI (CI=true) that is a failure.
Screenshots go to out/test-artifacts/ (scripts/viz-screenshot makes the README's docs/viz.png).
"""

import contextlib
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import required, required_module, stop

from cxsim.viz import server_command, server_env

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "out" / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
pytestmark = pytest.mark.browser

required(f"Debian's chromium ({CHROMIUM})", CHROMIUM.exists(), "apt-get install chromium; .ci/run does it")
playwright = required_module("playwright.sync_api")
expect = playwright.expect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(name: str, compare: str | None = None):
    """The page, as `cxsim viz [--compare ...]` serves it, with the fixture lessons; killed afterwards."""
    port = free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / f"{name}.log", "w")
    proc = subprocess.Popen(
        server_command(port),
        env=server_env(lessons=ROOT / "tests" / "lessons", compare=compare),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the page server did not start; see {ARTIFACTS / f'{name}.log'}")
                time.sleep(0.5)
        yield url
    finally:
        stop(proc)
        log.close()


@pytest.fixture(scope="module")
def server():
    with serving("server") as url:
        yield url


@pytest.fixture(scope="module")
def compare_server():
    """`cxsim viz --compare cco_led,siloed`."""
    with serving("compare-server", compare="cco_led,siloed") as url:
        yield url


@contextlib.contextmanager
def browsing(url):
    """A Chromium page on `url`; no page error, console error or failed request is allowed."""
    problems = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=HEADLESS)
        page = browser.new_page(viewport={"width": 1500, "height": 1150})
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(f"console error: {m.text}") if m.type == "error" else None)
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
        page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
        page.goto(url)
        yield page
        browser.close()
    assert problems == [], "\n".join(problems)


@pytest.fixture
def page(server):
    with browsing(server) as page:
        yield page


@pytest.fixture
def compare_page(compare_server):
    with browsing(compare_server) as page:
        yield page


def day(page) -> int:
    return int(re.search(r"Day (\d+) of", page.locator(".cx-day").inner_text()).group(1))


def wait_for_day(page, predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate(day(page)):
        assert time.monotonic() < deadline, f"day stayed at {day(page)}"
        page.wait_for_timeout(200)


def kpis(page) -> list[str]:
    return page.locator(".cx-kpi-value").all_inner_texts()


def choose(page, select, option: str):
    """Pick an option of a Vuetify select (its menu opens as a list at the end of the page)."""
    select.click()
    page.locator(".menuable__content__active .v-list-item", has_text=re.compile(f"^{re.escape(option)}$")).click()


def assert_drawn(page):
    """The customer view and every chart are SVG with real content, not blank boxes."""
    grid = page.locator("svg.cx-customers").first
    grid.wait_for()
    box = grid.bounding_box()
    assert box["width"] > 200 and box["height"] > 200
    fills = page.evaluate(
        "() => new Set([...document.querySelectorAll('svg.cx-customers rect')].map(r => r.getAttribute('fill'))).size"
    )
    assert fills >= 3, "the customers are drawn in at least three colours"
    hover = page.locator("svg.cx-customers rect title").first.text_content()
    assert re.match(r"customer \d+: (prospect|customer|churned)", hover), hover
    widths = page.evaluate(
        "() => [...document.querySelectorAll('.cx-chart')].map(c => Math.max(0, "
        "...[...c.querySelectorAll('polyline.cx-line')].map(l => l.getBoundingClientRect().width)))"
    )
    assert len(widths) >= 4 and min(widths) > 50, f"a chart has no line drawn: widest line per chart {widths}"


def snap(page, name: str):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def play_and_pause(page, until: int):
    """Play until the day shown reaches `until`, pause, and check that the days stop."""
    page.get_by_role("button", name="▶").click()
    wait_for_day(page, lambda d: d >= until)
    for _ in range(10):  # a click can land while the button is being redrawn for the next day
        page.get_by_role("button", name="❚❚").click()
        try:
            page.get_by_role("button", name="▶").wait_for(timeout=3000)
            break
        except playwright.Error:
            continue
    page.wait_for_timeout(1000)  # a day already under way when Pause was pressed may still finish
    paused = day(page)
    page.wait_for_timeout(1500)
    assert day(page) == paused, "the model kept running after Pause"


def test_teaching_page_end_to_end(page):
    page.locator(".cx-day").wait_for(timeout=60_000)
    assert day(page) == 0
    expect(page.get_by_role("tab")).to_have_count(0)  # no stray "Page 0" tab
    snap(page, "1-loaded")

    choose(page, page.locator(".cx-ownership-select"), "siloed")
    page.locator(".cx-day", has_text="siloed").wait_for()
    assert day(page) == 0

    before = kpis(page)
    for n in range(1, 4):
        page.get_by_role("button", name="Step").click()
        wait_for_day(page, lambda d, n=n: d >= n)
    assert day(page) == 3
    expect(page.locator(".cx-kpi-value")).to_have_count(8)
    expect(page.locator(".cx-kpi-value")).not_to_have_text(before)  # the KPIs moved with the days
    assert_drawn(page)
    snap(page, "2-stepped")

    page.locator("svg.cx-customers rect[fill]:not([fill='#e8eaf0']):not([fill='#8d8d8d'])").first.click()
    expect(page.locator(".cx-journey-head")).to_contain_text("Customer")

    play_and_pause(page, 6)
    assert len(page.locator(".cx-journey svg polyline.cx-line").first.get_attribute("points").split()) >= 6
    snap(page, "3-played")

    choose(page, page.locator(".v-input", has_text="people in the market").first, "200")
    page.get_by_role("button", name="Reset").click()
    page.locator(".cx-day", has_text="200 people").wait_for()
    assert day(page) == 0 and "siloed" in page.locator(".cx-day").inner_text()
    expect(page.locator("svg.cx-customers rect")).to_have_count(200)
    expect(page.locator(".cx-command")).to_contain_text(
        "cxsim run base --set ownership.model=siloed --population 200 --seed 42 --engine agents"
    )

    choose(page, page.locator(".cx-lesson-select"), "Billing outage (test lesson)")
    page.locator(".cx-day", has_text="Billing outage").wait_for()
    expect(page.locator(".cx-lesson-description")).to_contain_text("three weeks")
    expect(page.locator(".cx-lesson")).to_contain_text("day 3: billing fails 50% of encounters for 21 days")
    for n in range(1, 4):
        page.get_by_role("button", name="Step").click()
        wait_for_day(page, lambda d, n=n: d >= n)
    assert_drawn(page)
    snap(page, "4-lesson")


def test_side_by_side_end_to_end(compare_page):
    page = compare_page
    page.locator(".cx-day").wait_for(timeout=60_000)
    assert day(page) == 0
    expect(page.locator(".cx-day")).to_contain_text(re.compile(r"A \W*cco_led: base"))
    expect(page.locator(".cx-day")).to_contain_text(re.compile(r"B \W*siloed: base"))
    expect(page.get_by_role("tab")).to_have_count(0)
    expect(page.locator("svg.cx-customers")).to_have_count(2)
    expect(page.locator(".cx-pair-kpi")).to_have_count(8)

    for n in range(1, 4):
        page.get_by_role("button", name="Step").click()
        wait_for_day(page, lambda d, n=n: d >= n)
    assert_drawn(page)
    expect(page.locator("polygon.cx-band")).to_have_count(6)  # every chart shades the difference
    expect(page.locator(".cx-command")).to_contain_text(
        "cxsim compare base --vary ownership.model=cco_led,siloed --population 500 --seed 42 --replicates 10"
    )
    snap(page, "5-side-by-side")

    play_and_pause(page, 12)
    # the same customer in the same place on both sides: click one, read both journeys
    page.locator("svg.cx-customers").first.locator("rect[fill]:not([fill='#e8eaf0'])").first.click()
    expect(page.locator(".cx-journey-head")).to_have_count(2)
    expect(page.locator(".cx-journey-a .cx-journey-head")).to_contain_text("cco_led")
    expect(page.locator(".cx-journey-b .cx-journey-head")).to_contain_text("siloed")
    heads = page.locator(".cx-journey-head").all_inner_texts()
    assert re.search(r"Customer (\d+)", heads[0]).group(1) == re.search(r"Customer (\d+)", heads[1]).group(1)
    expect(page.locator("svg.cx-customers rect[stroke='#000']")).to_have_count(2)  # selected on both sides
    snap(page, "6-two-journeys")

    choose(page, page.locator(".cx-lesson-select"), "Billing outage (test lesson)")
    page.locator(".cx-day", has_text="Billing outage").wait_for()
    expect(page.locator("svg.cx-customers")).to_have_count(2)
    expect(page.locator(".cx-guide")).to_contain_text("Complaints queue at service")
    choose(page, page.locator(".cx-contrast-kind"), "the lesson against its control")
    page.locator(".cx-day", has_text=re.compile(r"A \W*base: base")).wait_for()
    expect(page.locator(".cx-day")).to_contain_text(re.compile(r"B \W*Billing outage \(test lesson\)"))
    for n in range(1, 3):
        page.get_by_role("button", name="Step").click()
        wait_for_day(page, lambda d, n=n: d >= n)
    assert_drawn(page)
    snap(page, "7-lesson-against-control")
