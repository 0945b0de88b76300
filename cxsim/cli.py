"""The command line: a thin layer over the Python API. Exit codes: 0 success, 2 bad input, 1 internal error."""

import argparse
import json
import os
import signal
import sys

from cxsim.files import OUTPUT_NAMES, OutputError, check_folder
from cxsim.kpis import KPIS
from cxsim.scenario import (
    ScenarioError,
    budget_warnings,
    late_events,
    load_scenario,
    represents_note,
    sample_warnings,
    trace_scenario,
)


def _scenario_options(p: argparse.ArgumentParser, many: bool = False):
    if many:
        p.add_argument(
            "scenarios",
            nargs="+",
            metavar="scenario",
            help="scenario files (TOML) or bundled names; the first is the baseline",
        )
    else:
        p.add_argument("scenario", help="scenario file (TOML) or the name of a bundled scenario, e.g. base")
    _options(p)


def _options(p: argparse.ArgumentParser):
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key, e.g. departments.billing.budget=2e6 (repeatable)",
    )
    p.add_argument("--replicates", type=int, help="replicates (seeds seed, seed+1, ...)")
    p.add_argument("--seed", type=int, help="seed of the first replicate")
    p.add_argument("--days", type=int, help="days to simulate")
    p.add_argument(
        "--population",
        type=int,
        help="simulated people; initial customers and budgets scale in proportion, unless market.represents is set "
        "(then the file's are the company's and only the sample changes)",
    )
    p.add_argument("--engine", choices=["numba", "agents"], help="numba (fast) or agents (Mesa agents)")


def _load(args, path=None, extra=()) -> tuple:
    """A scenario with the command's options, and the warnings about it that need to know who set what."""
    s, traced = trace_scenario(
        args.scenario if path is None else path, [*args.overrides, *extra], **_load_options(args)
    )
    return s, late_events(s, traced)


def _load_options(args) -> dict:
    return dict(
        population=args.population, days=args.days, seed=args.seed, replicates=args.replicates, engine=args.engine
    )


def _check_output_options(args, names=OUTPUT_NAMES):
    """Refuse a bad --threads or --out before the first run starts."""
    threads = getattr(args, "threads", None)
    if threads is not None:
        import numba

        if not 1 <= threads <= numba.config.NUMBA_NUM_THREADS:
            raise ScenarioError(
                f"--threads: expected a whole number from 1 to {numba.config.NUMBA_NUM_THREADS} "
                f"(the threads numba can use here), got {threads}"
            )
    if args.out:
        check_folder(args.out, names)


def _varied(args) -> tuple[list, list[str]]:
    """The scenarios to compare (each file as it is, or once per value of `--vary KEY=V1,V2,...`) and the
    warnings about them."""
    _, scenarios, warnings = _arms(args)
    return scenarios, warnings


def _arms(args) -> tuple[list, list, list[str]]:
    """The scenarios to compare as `comparison.Arm`s (a file and its options, for --posterior), as loaded
    scenarios, and the warnings about them."""
    from cxsim.comparison import Arm

    options = _load_options(args)
    plain = [Arm(path, tuple(args.overrides), **options) for path in args.scenarios]
    if not args.vary:
        arms = plain
    else:
        key, sep, values = args.vary.partition("=")
        choices = [v.strip() for v in values.split(",")]
        if not sep or not key.strip() or not all(choices):
            raise ScenarioError(
                f"--vary {args.vary}: expected KEY=VALUE1,VALUE2,... (e.g. ownership.model=cmo_led,cco_led)"
            )
        key, arms = key.strip(), []
        for arm in plain:
            for value in choices:
                varied = Arm(arm.path, (*arm.overrides, ("--vary", f"{key}={value}")), **options)
                s = varied.load()
                label = value if len(args.scenarios) == 1 else f"{s.name}/{value}"
                what = f"with {key} = {value}"
                arms.append(
                    Arm(
                        varied.path,
                        varied.overrides,
                        **options,
                        name=label,
                        description=f"{s.description} — {what}" if s.description else what,
                    )
                )
    scenarios, warnings = [], []
    for arm in arms:
        s, traced = arm.trace()
        scenarios.append(s)
        warnings += late_events(s, traced)
    return arms, scenarios, warnings


def _wrote(paths):
    for path in paths:
        print(f"wrote {path}", file=sys.stderr)


def _warn(scenarios, notes=()) -> None:
    """Valid but doubtful settings, on stderr, each once: `notes`, events after the last day, budgets far
    from their reference; and what one simulated person stands for, where the market is represented."""
    late = [f"{line}: it never happens" for line in notes]
    doubts = [line for s in scenarios for line in budget_warnings(s) + sample_warnings(s)]
    for line in dict.fromkeys(late + doubts):
        print(f"cxsim: warning: {line}", file=sys.stderr)
    for line in dict.fromkeys(filter(None, (represents_note(s) for s in scenarios))):
        print(f"cxsim: note: {line}", file=sys.stderr)


def _people(s) -> str:
    """The market's size as a header says it: the simulated people, and whom they stand for."""
    m = s.market
    if m.represents is None:
        return f"{m.population} people in the market"
    return f"{m.population:,} simulated people standing for {m.represents:,} in the market"


def cmd_check(args) -> int:
    """Validate a scenario as `run` would, a lesson file as `lesson` would, a calibration file as `calibrate`."""
    from cxsim import lessons
    from cxsim.memory import check_memory

    if _is_calibration(args.scenario):
        from cxsim.calibration import load_calibration

        cal = load_calibration(args.scenario, population=args.population)
        for line in cal.warnings:
            print(f"cxsim: warning: {line}", file=sys.stderr)
        _warn([cal.scenario])
        print(
            f"{args.scenario}: ok (a calibration, method {cal.file.method}: {len(cal.parameters)} parameters, "
            f"{len(cal.targets)} targets, on {cal.scenario.name}: {_people(cal.scenario)}, {cal.file.days} days)"
        )
        return 0
    s, notes = _load(args)
    checked = [s]
    if s.lesson is not None:
        checked = lessons.load(lessons.locate(args.scenario), args.overrides, **_load_options(args))
    for scenario in checked:
        check_memory(scenario)
    _warn(checked, notes)
    against = f", a lesson against {checked[1].name}" if s.lesson is not None else ""
    print(
        f"{args.scenario}: ok ({s.name}: {_people(s)}, {s.days} days, "
        f"{s.replicates} replicates, ownership {s.ownership.model}{against})"
    )
    return 0


def _is_calibration(path: str) -> bool:
    """Whether `path` is a TOML file with a calibration's [parameters] or [targets] (no scenario has either)."""
    import tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False  # a bundled name, or a file the scenario loader will explain
    return "parameters" in data or "targets" in data


def cmd_run(args) -> int:
    from cxsim.experiment import run

    _check_output_options(args)
    s, notes = _load(args)
    _warn([s], notes)
    results = run(s, threads=args.threads, progress=False if args.json else None)
    if args.json:
        print(json.dumps(results.to_dict(), indent=1, allow_nan=False))
    else:
        print(
            f"{s.name}: {_people(s)}, {s.days} days, "
            f"{len(results.runs)} replicates, engine {results.engine}, ownership {s.ownership.model}\n"
        )
        print(results.table())
        dept = results.departments.groupby("department", sort=False).mean(numeric_only=True)
        print("\nper department (mean over replicates)")
        print(
            dept[["budget", "failures", "complaints_caused", "churn_attributed"]].to_string(
                float_format=lambda x: f"{x:,.0f}"
            )
        )
    if args.out:
        _wrote(results.write(args.out))
    return 0


def cmd_compare(args) -> int:
    from cxsim import report
    from cxsim.comparison import compare

    _check_output_options(args)
    if args.draws is not None and args.posterior is None:
        raise ScenarioError("--draws: only with --posterior DIR (the draws come from a calibration's posterior)")
    arms, scenarios, notes = _arms(args)
    _warn(scenarios, notes)
    comparison = compare(
        scenarios if args.posterior is None else arms,
        threads=args.threads,
        progress=False if args.json else None,
        horizon_years=args.horizons,
        posterior=args.posterior,
        draws=args.draws,
        replicates=args.replicates if args.posterior is not None else None,
    )
    if comparison.posterior is not None:
        for line in comparison.posterior["notes"][1:]:
            print(f"cxsim: note: {line}", file=sys.stderr)
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=1, allow_nan=False))
    else:
        b = scenarios[0]
        print(
            f"{len(scenarios)} scenarios, {_people(b)}, {b.days} days, "
            f"{len(comparison.baseline.runs)} paired replicates (seeds from {b.seed}), baseline {b.name}"
        )
        if comparison.posterior is not None:
            print(report.posterior_header(comparison))
        for kpi in args.kpis or KPIS:
            print(f"\n{kpi}: {KPIS[kpi]}")
            print(report.text_table(report.columns(comparison), report.kpi_rows(comparison, kpi)))
        print("\nin short (95% paired intervals):")
        print("\n".join(f"  {line}" for line in report.digest(comparison, args.kpis or report.HEADLINE)))
        if len(scenarios) > 1 and comparison.horizons:
            print("\nover the years (paired differences against the baseline):\n")
            print("\n".join(report.horizon_tables(comparison)).rstrip())
    if args.out:
        _wrote(report.write(comparison, args.out, command="cxsim " + " ".join(args.argv)))
    return 0


def cmd_lesson(args) -> int:
    from cxsim import lessons, report

    if args.lesson is None:
        for name, path in lessons.available().items():
            print(f"{name}\n    {load_scenario(path).description}\n")
        return 0
    _check_output_options(args)
    path = lessons.locate(args.lesson)
    comparison, outcomes = lessons.run(
        path, threads=args.threads, progress=None, overrides=args.overrides, **_load_options(args)
    )
    lesson = comparison.results[1].scenario
    print(f"{lesson.name}: {lesson.description}\n")
    print(f"against {comparison.baseline.scenario.name}: {comparison.baseline.scenario.description}\n")
    rows = [[o.kpi, o.expected, report.signed(o.diff), report.interval_text(*o.ci95), _outcome(o)] for o in outcomes]
    print(report.text_table(["kpi", "claim", "paired diff", "95% CI", "outcome"], rows))
    if args.out:
        _wrote(report.write(comparison, args.out, command="cxsim " + " ".join(args.argv)))
    return 0


def _outcome(o) -> str:
    """A lesson's claim: shown, not shown, or n/a without an interval (as `compare`'s verdicts)."""
    return "shown" if o.shown else "not shown" if o.ci95[0] is not None else "n/a (no interval)"


def _horizons(text: str) -> tuple[float, ...]:
    """`--horizons 1,3,5`: years, each at least a day."""
    try:
        years = tuple(float(x) for x in text.split(","))
    except ValueError:
        years = ()
    if not years or not all(round(365 * y) >= 1 and y <= 100 for y in years):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated years > 0, each at least a day (1/365) and at most 100, e.g. 1,3,5; got {text!r}"
        )
    return years


def _kpi_list(text: str) -> list[str]:
    names = [k.strip() for k in text.split(",")]
    unknown = [k for k in names if k not in KPIS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown KPI {', '.join(unknown)}; known: {', '.join(KPIS)}")
    return names


def cmd_viz(args) -> int:
    from cxsim.viz import serve

    return serve(args.port, args.lesson, args.lessons, args.compare)


def cmd_bench(args) -> int:
    from cxsim import bench

    sizes = bench.parse_sizes(args.sizes) if args.sizes is not None else None
    for name in ("days", "repeats"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ScenarioError(f"--{name}: expected a whole number >= 1, got {getattr(args, name)}")
    _check_output_options(args, bench.OUTPUT_NAMES)
    result = bench.run_bench(args.quick, sizes, args.days, args.repeats)
    print(bench.markdown(result))
    _wrote(bench.write(result, args.out))
    return 0


def cmd_calibrate(args) -> int:
    from cxsim import calibration
    from cxsim.calibration.file import load_calibration
    from cxsim.sweep import cores_from
    from cxsim.sweepfile import Cluster

    cal = load_calibration(args.file, population=args.population)
    for line in cal.warnings:
        print(f"cxsim: warning: {line}", file=sys.stderr)
    if args.truths is not None and not args.synthetic:
        raise ScenarioError("--truths: only with --synthetic (the true parameter sets of the identifiability check)")
    out = args.out or calibration.default_out(args.file, args.synthetic)
    cores, cluster = cores_from(args, Cluster())
    progress = False if args.json and args.progress is None else args.progress
    if args.synthetic:
        from cxsim.calibration.synthetic import DEFAULT_TRUTHS

        truths = DEFAULT_TRUTHS if args.truths is None else args.truths
        summary = calibration.synthetic_check(
            cal, out, cores, truths=truths, resume=args.resume, progress=progress, cluster=cluster
        )
        return _print_synthetic(summary, out, args.json)
    summary = calibration.calibrate(cal, out, cores, resume=args.resume, progress=progress, cluster=cluster)
    if args.json:
        print(json.dumps(summary, indent=1, allow_nan=False))
        return 0
    print(
        f"{cal.path}: {summary['method']}, {summary['population']:,} people, {summary['days']} days, "
        f"{summary['runs']} runs in {summary['seconds']:.1f} s"
    )
    print("\nparameter: estimate [90% interval]")
    for key, p in summary["parameters"].items():
        bound = "  (reaches a prior bound)" if p["at_prior_bound"] else ""
        print(f"  {key}: {p['estimate']:.4g} [{p['interval'][0]:.4g}, {p['interval'][1]:.4g}]{bound}")
    print("\ntarget: observed, simulated [90% interval]: verdict")
    for name, t in summary["targets"].items():
        if isinstance(t["observed"], list):
            extra = f"; holdout RMSE {t['holdout']['rmse']:.4g}" if "holdout" in t else ""
            print(f"  {name}: {len(t['observed'])} months, RMSE {t['rmse_fitted']:.4g}{extra}: {t['verdict']}")
            continue
        lo, hi = t["interval"]
        sim = "-" if t["simulated"] is None else f"{t['simulated']:.4g}"
        band = "" if lo is None else f" [{lo:.4g}, {hi:.4g}]"
        print(f"  {name}: {t['observed']:.4g}, {sim}{band}: {t['verdict']}")
    print(f"\ncalibrated scenario: {summary['calibrated']}; report: {os.path.join(out, 'report.md')}")
    return 0


def _print_synthetic(summary: dict, out: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps(summary, indent=1, allow_nan=False))
        return 0
    print(
        f"{summary['file']}: synthetic check, {summary['method']}, {summary['population']:,} people, "
        f"{summary['days']} days: {summary['fitted']} of {summary['truths']} truths fitted, "
        f"{summary['runs']} runs in {summary['seconds']:.1f} s"
    )
    for failed in summary["failed"]:
        print(f"  truth {failed['truth']} not fitted: {failed['reason']}")
    print("\nparameter: verdict; coverage of the 90% intervals [95% interval]; median width and error of the prior")
    for key, p in summary["parameters"].items():
        if "coverage" not in p:
            print(f"  {key}: {p['verdict']} ({p['why']})")
            continue
        lo, hi = p["coverage_interval"]
        print(
            f"  {key}: {p['verdict']}; {p['covered']}/{p['fits']} [{lo:.2f}, {hi:.2f}] ({p['intervals']}); "
            f"width {p['width_prior']:.0%}, "
            f"error {p['error_prior']:.0%}, bias {p['bias']:.3g}"
        )
    low = [k for k, t in summary["targets"].items() if t["ratio"] is not None and t["ratio"] < 0.8]
    if low:
        print(
            f"\nnote: the file states a smaller error than the sample's own noise for {', '.join(low)}: "
            "the intervals come out too narrow (synthetic.md compares them)"
        )
    print(f"\nreport: {os.path.join(out, 'synthetic.md')}; table: {os.path.join(out, 'synthetic.parquet')}")
    return 0


def _calibrate_arguments(p: argparse.ArgumentParser) -> None:
    from cxsim.sweep import add_cluster_arguments

    p.add_argument("file", help="calibration file (TOML): scenario, parameters with priors, targets")
    p.add_argument(
        "--population", type=int, help="people in the simulated market (initial customers and budgets scale)"
    )
    p.add_argument("--out", help="results directory (default: out/<file name>)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--resume", action="store_true", help="continue the calibration in --out (its trials are kept)")
    p.add_argument(
        "--synthetic",
        action="store_true",
        help="identifiability check: fit targets simulated at parameters drawn from the priors and report "
        "coverage, bias and a verdict per parameter (default --out out/<file name>-synthetic)",
    )
    p.add_argument(
        "--truths", type=int, help="with --synthetic: true parameter sets drawn from the priors (default 20)"
    )
    add_cluster_arguments(p)
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, help="progress bar on stderr (default: on a terminal)"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxsim", description="Simulate who should own the customer experience.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario's replicates and report KPIs with 95%% intervals")
    _scenario_options(run)
    run.add_argument("--threads", type=int, help="numba threads")
    run.add_argument("--out", help="directory for Parquet tables (runs, days, departments) and a PNG")
    run.add_argument("--json", action="store_true", help="print the result as one JSON object")
    run.set_defaults(func=cmd_run)
    cmp = sub.add_parser(
        "compare",
        help="run scenarios with common random numbers and compare them "
        "against the first (paired differences, 95%% intervals, a report)",
    )
    _scenario_options(cmp, many=True)
    cmp.add_argument(
        "--vary",
        metavar="KEY=V1,V2,...",
        help="compare each scenario once per value of one key, e.g. ownership.model=cmo_led,cco_led",
    )
    cmp.add_argument("--kpis", type=_kpi_list, metavar="K1,K2", help="KPIs to print (default: all)")
    cmp.add_argument(
        "--horizons",
        type=_horizons,
        default=(1, 3, 5),
        metavar="Y1,Y2",
        help="years after which to show the paired differences, as far as the runs reach (default 1,3,5)",
    )
    cmp.add_argument(
        "--posterior",
        metavar="DIR",
        help="a cxsim calibrate folder: replicate r of every scenario runs draw r of its posterior (and the "
        "posterior's centre on the same seeds); the report splits each interval into parameter uncertainty and noise",
    )
    cmp.add_argument(
        "--draws", type=int, metavar="N", help="posterior draws, one per replicate (>= 2; default: the replicates)"
    )
    cmp.add_argument("--threads", type=int, help="numba threads")
    cmp.add_argument("--out", help="directory for the report (markdown, HTML, PNG figures, Parquet, JSON)")
    cmp.add_argument("--json", action="store_true", help="print the comparison as one JSON object")
    cmp.set_defaults(func=cmd_compare)
    lesson = sub.add_parser(
        "lesson", help="list the lessons, or run one against its control and show whether each effect it claims appears"
    )
    lesson.add_argument("lesson", nargs="?", help="a lesson's name (see `cxsim lesson`) or a lesson file")
    _options(lesson)
    lesson.add_argument("--threads", type=int, help="numba threads")
    lesson.add_argument("--out", help="directory for the comparison report")
    lesson.set_defaults(func=cmd_lesson)
    bench = sub.add_parser("bench", help="benchmark the engines: throughput, scaling, memory, compile time")
    bench.add_argument(
        "--quick",
        action="store_true",
        help="a small smoke run (about a minute, mostly the cold compile; not the real figures)",
    )
    bench.add_argument("--sizes", help="populations for the scaling table, e.g. 1e3,1e4,1e5")
    bench.add_argument("--days", type=int, help="days stepped per scaling run (sizes up to 10^6)")
    bench.add_argument("--repeats", type=int, help="alternating runs of each engine")
    bench.add_argument("--out", default="out/bench", help="directory for bench.json, bench.md and scaling.png")
    bench.set_defaults(func=cmd_bench)
    check = sub.add_parser("check", help="validate a scenario file and exit")
    _scenario_options(check)
    check.set_defaults(func=cmd_check)
    calibrate = sub.add_parser(
        "calibrate",
        help="fit a scenario's parameters to your own numbers (Optuna or ABC-SMC): estimates with 90%% intervals, "
        "a verdict per target, a calibrated scenario and a report",
    )
    _calibrate_arguments(calibrate)
    calibrate.set_defaults(func=cmd_calibrate)
    from cxsim import sensitivity, sweep

    for module, what in (
        (sweep, "run a sweep file's design on Dask; results stream to a Parquet store (`cxsim sweep summary DIR`)"),
        (sensitivity, "run a Sobol or Morris sweep; sensitivity indices per KPI, table and plot"),
    ):
        command = sub.add_parser(module.__name__.split(".")[-1], help=what)
        module.add_arguments(command)
        command.set_defaults(func=module.main)
    viz = sub.add_parser("viz", help="the teaching page (Mesa SolaraViz) on http://127.0.0.1:PORT/")
    viz.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")
    viz.add_argument("--lesson", help="lesson to open with: its file name without .toml (see cxsim lesson)")
    viz.add_argument("--lessons", help="directory of lesson files (default the bundled lessons)")
    viz.add_argument(
        "--compare",
        metavar="A,B|control|SETTING=VALUE",
        help="open side by side: two ownership models (e.g. cco_led,siloed), the lesson against its control, "
        "or one setting moved on the second side (e.g. handoff_consistency=0.4); same customers, same luck",
    )
    viz.set_defaults(func=cmd_viz)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["sweep", "summary"]:  # a store, not a sweep file (a sweep file named so: ./summary)
        from cxsim import sweepsummary

        p = argparse.ArgumentParser(
            prog="cxsim sweep summary",
            description="a sweep store's design points with replicate means and 95% intervals, its "
            "completeness and failed runs; with --against, paired differences against another store",
        )
        sweepsummary.add_arguments(p)
        args = p.parse_args(argv[2:])
        args.func = sweepsummary.main
    else:
        args = parser().parse_args(argv)
    args.argv = argv
    try:
        code = args.func(args)
        if code == 130:  # an interrupted sweep has saved its results and said so: a Ctrl-C more cannot cut it short
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        return code
    except ScenarioError as e:
        print(f"cxsim: {e}", file=sys.stderr)
        return 2
    except OutputError as e:
        print(f"cxsim: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("cxsim: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an internal error: say so plainly; CXSIM_DEBUG=1 shows the traceback
        if os.environ.get("CXSIM_DEBUG"):
            raise
        print(f"cxsim: internal error: {type(e).__name__}: {e} (set CXSIM_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
