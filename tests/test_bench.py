"""`cxsim bench` in its smallest mode writes every figure, with sane types and values (no timing thresholds)."""

import json

import pytest

from cxsim.bench import TARGETS
from cxsim.cli import main


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert main(["bench", "--quick", "--sizes", "1e3,2e3", "--days", "2", "--repeats", "2", "--out", str(out)]) == 0
    return out, json.loads((out / "bench.json").read_text())


def _rate(x):
    assert isinstance(x, float) and 0 < x < 1e11
    return x


@pytest.mark.slow
def test_engines_compared_side_by_side(quick):
    _, r = quick
    e = r["engines"]
    assert e["repeats"] == 2 and e["population"] == 1000
    for engine in ("numba", "agents"):
        assert len(e[engine]["values"]) == 2
        assert e[engine]["min"] <= _rate(e[engine]["median"]) <= e[engine]["max"]
        assert e[engine]["setup_s"]["median"] >= 0
        assert e[engine]["per_cpu_second"]["median"] > 0
    assert e["ratio"] == pytest.approx(e["numba"]["median"] / e["agents"]["median"])
    assert e["ratio_range"][0] <= e["ratio"] <= e["ratio_range"][1]


@pytest.mark.slow
def test_scaling_rows_for_each_size_and_thread_count(quick):
    _, r = quick
    rows = r["scaling"]
    assert {(x["population"], x["days"]) for x in rows} == {(1000, 2), (2000, 2)}
    assert {x["threads"] for x in rows} >= {1}
    for x in rows:
        assert x["rate"] == pytest.approx(x["population"] * x["days"] / x["step_s"])
        assert x["year_s"] == pytest.approx(x["step_s"] * 365 / x["days"])
        assert x["setup_s"] >= 0 and x["cpu_s"] >= 0 and x["engine"] == "numba"


@pytest.mark.slow
def test_memory_bandwidth_and_compile_figures(quick):
    _, r = quick
    mem = r["memory"]
    # base scenario: degree 10 -> 10 int32 links + one int64 offset per customer
    assert mem["network_bytes_per_customer"] == pytest.approx(48.0, abs=0.1)
    assert 20 < mem["state_bytes_per_customer"] < 150
    assert mem["bytes_per_customer"] == pytest.approx(mem["state_bytes_per_customer"] + 48.0, abs=0.1)
    assert mem["peak_rss_bytes"] > 10 * 2**20
    bw = r["bandwidth"]
    assert bw["bytes_per_s"] > 1e8 and bw["ceiling_rate"] == pytest.approx(
        bw["bytes_per_s"] / bw["traffic_bytes_per_customer_day"]
    )
    assert 0 < bw["share_of_ceiling"] == pytest.approx(bw["kernel_rate"] / bw["ceiling_rate"])
    p = r["profile"]["by_population"]
    assert list(p) == ["base", "prospects", "actives"]
    assert p["prospects"]["active_share"] < 0.1 < 0.9 < p["actives"]["active_share"]  # a few buy during the run
    for x in p.values():
        assert x["step_ns"] > 0 and x["kernel_ns"] > 0 and x["tally_ns"] > 0 and x["wom_delivery_ns"] >= 0
    assert r["profile"]["rest_ms_per_day"] > 0
    c = r["compile"]
    assert c["cold"]["first_model_s"] > c["warm"]["first_model_s"] > 0  # compiling costs more than loading the cache
    assert c["compile_s"] > 0 and c["run_warm_s"]["median"] > 0
    # the cold compile by function: the customer day (compiled once, into live_chunk) and the parallel step
    seconds = c["cold"]["functions_s"]
    assert {"live_chunk", "step_population", "tally_chunk"} <= set(seconds) and min(seconds.values()) >= 0
    assert sum(seconds.values()) <= c["cold"]["first_model_s"]
    assert c["cold_run_command"] == "cxsim run base --days 10 --population 2000" and c["cold_run_s"] > 0
    assert c["run_command"] == "cxsim run base --days 30 --population 10000"


@pytest.mark.slow
def test_every_target_reported_and_outputs_written(quick):
    out, r = quick
    targets = r["targets"]
    assert list(targets) == [key for key, *_ in TARGETS]
    assert targets["engine_ratio"]["value"] is None  # the quick run is not at 10^5 customers
    assert targets["bytes_per_customer"]["met"] is (targets["bytes_per_customer"]["value"] <= 200)
    for t in targets.values():
        assert t["met"] is None if t["value"] is None else isinstance(t["met"], bool)
    md = (out / "bench.md").read_text()
    for heading in (
        "**Engines**",
        "**Scaling**",
        "**Memory**",
        "**Memory bandwidth**",
        "**JIT compiling**",
        "**Cold compile by function**",
        "**Profile**",
        "**Targets**",
    ):
        assert heading in md
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert r["machine"]["cores"] >= 1 and len(r["load_average_start"]) == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sizes", "1e3,lots"], "--sizes 1e3,lots: expected comma-separated whole numbers"),
        (["--days", "0"], "--days: expected a whole number >= 1"),
    ],
)
def test_bad_options_exit_2(args, message, capsys, tmp_path):
    assert main(["bench", "--quick", "--out", str(tmp_path / "b"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
