"""A calibration's outputs: the calibrated scenario file, the fit report (markdown, HTML, figures) and the
tables (trials / best candidates, or the weighted posterior) as Parquet, each written whole or not at all."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import markdown
import numpy as np

from cxsim.calibration.targets import NLL_90, TARGETS
from cxsim.files import atomic_write
from cxsim.kpis import number
from cxsim.report import markdown_table

FIGURES = (
    ("fit.png", "Each target: observed with its 90 % error band, simulated with its 90 % interval"),
    (
        "marginals.png",
        "Parameters: every trial's NLL above the best against its value, the 90 % threshold dashed, the estimate and "
        "interval in orange (optimize); the weighted posterior (abc)",
    ),
    ("pairs.png", "Pairs of parameters over the trials (yellow: near the best) or the posterior particles"),
    (
        "convergence.png",
        "Convergence: NLL by trial and the best so far (optimize), or by generation the temperature "
        "(acceptance by likelihood) or epsilon (by distance) (abc)",
    ),
)


def calibrated_toml(cal, fit) -> str:
    """A scenario file that extends the calibration's scenario with the fitted values."""
    nested: dict = {}
    for key, p in fit.parameters.items():
        *tables, leaf = key.split(".")
        node = nested
        for part in tables:
            node = node.setdefault(part, {})
        node[leaf] = p["estimate"]
    population = cal.scenario.market.population
    lines = [
        f"# The scenario {cal.file.scenario!r} calibrated by `cxsim calibrate {cal.path}` (method {fit.method}, "
        f"{population:,} people, seed {cal.file.seed}).",
        "# The fitted values are in the scenario's own units (--population scales budgets as for any run).",
    ]
    if cal.population is not None:
        lines.append(f"# Reproduce the fit at its scale: cxsim run THIS_FILE --population {cal.population}")
    lines += [
        f"name = {json.dumps((cal.scenario.name or 'scenario') + ' (calibrated)')}",
        f"description = {json.dumps(_describe_fit(fit))}",
        f"extends = {json.dumps(cal.scenario_ref)}",
        f"days = {cal.file.days}",
        "",
    ]

    def table(prefix: list[str], node: dict):
        scalars = {k: v for k, v in node.items() if not isinstance(v, dict)}
        if scalars:
            lines.append(f"[{'.'.join(prefix)}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in scalars.items())
            lines.append("")
        for k, v in node.items():
            if isinstance(v, dict):
                table(prefix + [k], v)

    for k, v in nested.items():
        if isinstance(v, dict):
            table([k], v)
        else:  # a top-level key (e.g. a whole-number setting at the top)
            lines.insert(lines.index(""), f"{k} = {_toml_value(v)}")
    return "\n".join(lines).rstrip() + "\n"


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


def _describe_fit(fit) -> str:
    return "calibrated: " + ", ".join(f"{k} = {p['estimate']:.4g}" for k, p in fit.parameters.items())


def _interval(lo, hi) -> str:
    return "-" if lo is None else f"[{number(lo)}, {number(hi)}]"


def render(cal, fit, calibrated: str) -> str:
    lines = [
        f"# Calibration of {cal.scenario.name}",
        "",
        f"`{cal.path}`: method **{fit.method}**, {cal.scenario.market.population:,} people in the simulated market"
        + (f" standing for {cal.scenario.market.population * cal.scale:,.0f}" if cal.scale != 1 else "")
        + f", {cal.file.days} days, {cal.file.replicates} replicates per trial, seed {cal.file.seed}; "
        f"{fit.runs} runs in {fit.seconds:.1f} s.",
        "",
        f"Calibrated scenario: `{calibrated}` (run it: `cxsim run {calibrated}"
        + (f" --population {cal.population}" if cal.population else "")
        + "`)",
        "",
        "## Targets",
        "",
        "Verdict: *fitted* when the simulated value lies within the observation's 90 % error band "
        "(observed ± 1.645 standard errors of its error model); *within error* when it does not but the "
        "simulated 90 % interval reaches that band; *out of reach* otherwise, with the value nearest the "
        "observed one that any trial reached.",
        "",
    ]
    rows = []
    for name, t in fit.targets.items():
        if isinstance(t["observed"], list):
            rows.append(
                [
                    f"{name} (series, {len(t['observed'])} months)",
                    t["kind"],
                    "monthly",
                    f"RMSE {number(t['rmse_fitted'])} (fitted months)",
                    "",
                    t["verdict"],
                ]
            )
            continue
        rows.append(
            [
                name,
                t["kind"],
                f"{number(t['observed'])} ± {number(1.645 * t['error'])}",
                number(t["simulated"]),
                _interval(*t["interval"]),
                t["verdict"],
            ]
        )
    lines += [markdown_table(["target", "kind", "observed (90 % band)", "simulated", "90 % interval", "verdict"], rows)]
    for name, t in fit.targets.items():
        if isinstance(t["observed"], list) and "holdout" in t:
            h = t["holdout"]
            lines += [
                "",
                f"**Holdout of {name}**: months {h['months'][0]}-{h['months'][-1]} not fitted; out-of-sample RMSE "
                f"{number(h['rmse'])} against {number(t['rmse_fitted'])} in sample; {h['within_error']} of {h['of']} "
                "held-out months within error.",
            ]
    lines += ["", "## Parameters", ""]
    prow = []
    both = fit.method == "optimize"

    def pair(x):
        return "-" if x is None else f"[{x[0]:.4g}, {x[1]:.4g}]"

    for key, p in fit.parameters.items():
        bound = " (reaches a prior bound: not identified there)" if p["at_prior_bound"] else ""
        row = [key, f"{p['estimate']:.4g}", pair(p["interval"]) + bound]
        if both:
            row += [pair(p.get("interval_trials")), pair(p.get("interval_fisher"))]
        prow.append(row + [f"[{p['prior'][0]:g}, {p['prior'][1]:g}]" + (" log" if p["log"] else "")])
    header = ["parameter", "estimate", "90 % interval"]
    header += ["from the trials", "from the information"] if both else []
    lines += [markdown_table(header + ["prior"], prow), ""]
    lines += ["## How these numbers came", ""] + [f"- {n}" for n in fit.notes] + [""]
    lines += ["## Figures", ""]
    for file, caption in FIGURES:
        lines += [f"![{caption}]({file})", "", f"*{caption}*", ""]
    return "\n".join(lines)


def figures(cal, fit, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    written = []

    def save(fig, name):
        path = folder / name
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
        plt.close(fig)
        written.append(path)

    # targets: each on its own axis, observed band against the simulated interval
    names = list(fit.targets)
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 1.6 + 1.3 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        t = fit.targets[name]
        if isinstance(t["observed"], list):
            m = t["months"]
            ax.plot(m, t["observed"], "o", color="black", label="observed")
            err = 1.645 * np.asarray(t["error"], float)
            ax.fill_between(m, np.asarray(t["observed"]) - err, np.asarray(t["observed"]) + err, alpha=0.2, color="k")
            sim = [np.nan if v is None else v for v in t["simulated"]]
            ax.plot(m, sim, "-", color="C0", label="simulated")
            lo = [np.nan if a is None else a for a, _ in t["interval"]]
            hi = [np.nan if b is None else b for _, b in t["interval"]]
            ax.fill_between(m, lo, hi, alpha=0.25, color="C0")
            if "holdout" in t:
                ax.axvline(t["holdout"]["months"][0] - 0.5, color="grey", ls="--")
            ax.set_xlabel("month")
        else:
            o, e = t["observed"], 1.645 * t["error"]
            ax.errorbar([o], [1], xerr=[[e], [e]], fmt="o", color="black", capsize=4, label="observed")
            if t["simulated"] is not None:
                lo, hi = t["interval"]
                xerr = [
                    [t["simulated"] - (lo if lo is not None else t["simulated"])],
                    [(hi or t["simulated"]) - t["simulated"]],
                ]
                ax.errorbar(
                    [t["simulated"]], [0], xerr=np.maximum(xerr, 0), fmt="s", color="C0", capsize=4, label="simulated"
                )
            ax.set_yticks([0, 1], ["simulated", "observed"])
            ax.set_ylim(-0.7, 1.7)
        ax.set_title(textwrap.fill(f"{name} ({TARGETS[name].unit}): {t['verdict']}", 90), fontsize=9)
    fig.tight_layout()
    save(fig, "fit.png")

    keys = list(fit.parameters)
    table = fit.tables.get("trials") if fit.method == "optimize" else fit.tables.get("posterior")
    if fit.method == "optimize":
        table = table[table.state == "COMPLETE"]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        p = fit.parameters[key]
        if fit.method == "optimize":
            ax.scatter(table[key], table["nll"] - table["nll"].min(), s=8, alpha=0.6)
            ax.axhline(NLL_90, color="grey", ls="--", lw=0.8)
            ax.set_yscale("symlog", linthresh=2 * NLL_90)
            ax.set_ylim(bottom=0)
            ax.set_ylabel("NLL above the best (--: 90 % threshold)", fontsize=8)
        else:
            ax.hist(table[key], weights=table["weight"], bins=20, alpha=0.7)
            ax.set_ylabel("posterior weight")
        ax.set_xlim(*p["prior"])
        ax.axvspan(*p["interval"], color="C1", alpha=0.2)
        ax.axvline(p["estimate"], color="C1")
        if p["log"]:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(key, fontsize=8)
    fig.tight_layout()
    save(fig, "marginals.png")

    n = len(keys)
    fig, axes = plt.subplots(max(n, 1), max(n, 1), figsize=(2.6 * n + 1, 2.6 * n + 0.5), squeeze=False)
    # optimize: the NLL above the best, on a log scale (a few bad trials must not wash out the rest)
    color = np.log1p(table["nll"] - table["nll"].min()) if fit.method == "optimize" else table["weight"]
    for i, a in enumerate(keys):
        for j, b in enumerate(keys):
            ax = axes[i, j]
            if i == j:
                ax.hist(table[a], weights=None if fit.method == "optimize" else table["weight"], bins=20)
            else:
                ax.scatter(
                    table[b], table[a], c=color, s=6, cmap="viridis_r" if fit.method == "optimize" else "viridis"
                )
            if fit.parameters[b]["log"]:
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())
            if i != j and fit.parameters[a]["log"]:
                ax.set_yscale("log")
                ax.yaxis.set_minor_formatter(NullFormatter())
            if i == n - 1:
                ax.set_xlabel(b, fontsize=7)
            if j == 0:
                ax.set_ylabel(a, fontsize=7)
    fig.tight_layout()
    save(fig, "pairs.png")

    fig, ax = plt.subplots(figsize=(6, 3.2))
    if fit.method == "optimize":
        t = fit.tables["trials"]
        t = t[t.state == "COMPLETE"].sort_values("trial")
        best = t["nll"].min()
        ax.plot(t["trial"], t["nll"] - best, ".", alpha=0.5, label="trial")
        ax.plot(t["trial"], t["nll"].cummin() - best, "-", color="C1", label="best so far")
        ax.set_yscale("symlog", linthresh=2 * NLL_90)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("trial")
        ax.set_ylabel(f"NLL above the best ({best:.4g})")
        ax.legend()
    else:
        g = fit.tables["generations"]
        ax.plot(g["generation"], g["epsilon"], "o-")
        ax.set_yscale("log")
        ax.set_xlabel("generation")
        ax.set_ylabel("temperature" if cal.file.acceptance == "likelihood" else "epsilon (adaptive distance)")
    fig.tight_layout()
    save(fig, "convergence.png")
    return written


def write(cal, fit, out: Path) -> dict:
    """Every output into `out`, each file atomically; returns the JSON summary (also summary.json)."""
    out = Path(out)
    calibrated = out / "calibrated.toml"
    atomic_write(calibrated, lambda tmp: Path(tmp).write_text(calibrated_toml(cal, fit), encoding="utf-8"))
    for name, frame in fit.tables.items():
        if name in ("trials", "best", "posterior"):
            atomic_write(out / f"{name}.parquet", lambda tmp, f=frame: f.to_parquet(tmp, index=False))
    summary = fit.to_dict(cal, str(calibrated))
    text = json.dumps(summary, indent=1, allow_nan=False, default=_json_default)
    atomic_write(out / "summary.json", lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    figures(cal, fit, out)
    md = render(cal, fit, str(calibrated))
    atomic_write(out / "report.md", lambda tmp: Path(tmp).write_text(md, encoding="utf-8"))
    html = markdown.markdown(md, extensions=["tables"])
    page = f"<!doctype html><meta charset='utf-8'><title>calibration</title><body>{html}</body>"
    atomic_write(out / "report.html", lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    return json.loads(text)


def _json_default(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return None if not math.isfinite(float(x)) else float(x)
    raise TypeError(type(x))
