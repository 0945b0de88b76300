"""`cxsim sweep summary`: per design point the replicate means with 95% intervals, the store's completeness,
the failed runs, and the paired differences between two stores of the same design.

The stores are written through the sweep's own Store with made-up KPIs: no run is simulated."""

import json

import pandas as pd
import pytest
from test_sweep import sweep_file

from cxsim.cli import main
from cxsim.stats import interval
from cxsim.sweep import MODEL_VERSION, design_table, store_meta
from cxsim.sweepfile import expand, load_sweep
from cxsim.sweepstore import Store
from cxsim.sweepsummary import summarize


def store(tmp_path, name, shift=0.0, seed_offset=0, skip=(), fail=()):
    """A store of the test sweep (2 points x 3 replicates) whose retention is point + replicate / 10 + shift;
    runs `skip` are not stored, runs `fail` failed."""
    text = sweep_file(tmp_path, f"{name}.toml", replicates=3, steps=2).read_text()
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace('"ownership.model" = ["cco_led", "siloed"]', '"ownership.model" = ["siloed"]'))
    sweep = load_sweep(path, [f"seed={7 + seed_offset}"])
    runs = expand(sweep, MODEL_VERSION)
    s = Store(tmp_path / name, store_meta(sweep, runs))
    s.begin(design_table(runs))
    rows, errors = [], []
    for i, r in enumerate(runs):
        ids = {"run_id": r.run_id, "replicate": r.replicate, "seed": r.seed, **r.params}
        if i in fail:
            errors.append({**ids, "error": "ValueError: boom", "traceback": "", "time": 0.0})
        elif i not in skip:
            value = r.point + r.replicate / 10 + shift * (1 + r.replicate / 100)
            rows.append({**ids, "retention": value, "profit": 1e6, "complaints": 3.0, "nps": 10.0})
    s.flush(rows, [], errors)
    s.close()
    return tmp_path / name, runs


def test_means_intervals_completeness_and_failed_runs(tmp_path, capsys):
    out, runs = store(tmp_path, "a", skip={5}, fail={4})
    s = summarize(out)
    assert (s.runs, s.stored, s.missing, s.complete) == (6, 4, [runs[5].run_id], False)
    assert list(s.failed["run_id"]) == [runs[4].run_id] and s.failed["error"].iloc[0] == "ValueError: boom"
    p = s.points.set_index("point")
    assert list(p["replicates"]) == [3, 1]  # point 1 keeps only replicate 0
    expected = interval([0.0, 0.1, 0.2])
    assert p.loc[0, "retention"] == pytest.approx(expected["mean"])
    assert [p.loc[0, "retention_lo"], p.loc[0, "retention_hi"]] == pytest.approx(expected["ci95"])
    assert p.loc[1, "retention"] == 1.0 and pd.isna(p.loc[1, "retention_lo"])  # one value: no interval
    assert main(["sweep", "summary", str(out), "--kpis", "retention"]) == 0
    text = capsys.readouterr().out
    assert "6 runs in the design: 4 stored, 1 failed, 1 not run" in text
    assert f"failed: {runs[4].run_id}" in text and "ValueError: boom" in text
    assert main(["sweep", "summary", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["completeness"] == {
        "runs": 6,
        "stored": 4,
        "failed": 1,
        "missing": 1,
        "stored_twice": 0,
        "complete": False,
    }
    assert d["points"][0]["kpis"]["retention"]["ci95"] == pytest.approx(expected["ci95"])
    assert d["points"][1]["kpis"]["retention"]["ci95"] == [None, None]
    assert d["points"][0]["parameters"] == runs[0].params and d["failed"][0]["seed"] == runs[4].seed


def test_two_stores_of_one_design_compare_by_paired_differences(tmp_path, capsys):
    base, _ = store(tmp_path, "base")
    new, _ = store(tmp_path, "new", shift=0.5)
    s = summarize(new, against=base)
    d = s.differences.set_index("point")
    diffs = [0.5 * (1 + r / 100) for r in range(3)]  # replicate r of a point, paired
    assert list(d["pairs"]) == [3, 3]
    assert d.loc[0, "retention"] == pytest.approx(interval(diffs)["mean"])
    assert [d.loc[0, "retention_lo"], d.loc[0, "retention_hi"]] == pytest.approx(interval(diffs)["ci95"])
    assert d.loc[0, "retention_hi"] - d.loc[0, "retention_lo"] < 0.05  # far tighter than the unpaired spread
    assert main(["sweep", "summary", str(new), "--against", str(base), "--kpis", "retention", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["against"] == str(base) and out["differences"][1]["kpis"]["retention"]["verdict"] == "clear"
    assert main(["sweep", "summary", str(new), "--against", str(base), "--kpis", "retention"]) == 0
    assert f"diff vs {base}" in capsys.readouterr().out


def test_bad_summary_input_exits_2(tmp_path, capsys):
    base, _ = store(tmp_path, "base")
    other, _ = store(tmp_path, "other", seed_offset=1)
    for args, expected in (
        ([str(tmp_path / "nowhere")], f"{tmp_path / 'nowhere'}: not a sweep directory"),
        ([str(base), "--against", str(other)], f"--against {other}: not the same design as {base}: point 0"),
        ([str(base), "--kpis", "csat"], f"--kpis: {base} holds no KPI csat"),
    ):
        assert main(["sweep", "summary", *args]) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err
