"""The command line: a thin layer over the Python API. Exit codes: 0 success, 2 bad input, 1 internal error."""

import argparse
import json
import os
import sys
from pathlib import Path

from cxsim.scenario import ScenarioError, load_scenario


def _number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def _scenario_options(p: argparse.ArgumentParser):
    p.add_argument("scenario", help="scenario file (TOML) or the name of a bundled scenario, e.g. base")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key, e.g. departments.billing.budget=2e6 (repeatable)")
    p.add_argument("--replicates", type=int, help="replicates (seeds seed, seed+1, ...)")
    p.add_argument("--seed", type=int, help="seed of the first replicate")
    p.add_argument("--days", type=int, help="days to simulate")
    p.add_argument("--population", type=int,
                   help="market size; initial customers and budgets scale in proportion")
    p.add_argument("--engine", choices=["numba", "agents"], help="numba (fast) or agents (Mesa agents)")


def _load(args):
    return load_scenario(args.scenario, args.overrides, population=args.population, days=args.days,
                         seed=args.seed, replicates=args.replicates, engine=args.engine)


def cmd_check(args) -> int:
    s = _load(args)
    print(f"{args.scenario}: ok ({s.name}: {s.market.population} customers, {s.days} days, "
          f"{s.replicates} replicates, ownership {s.ownership.model})")
    return 0


def cmd_run(args) -> int:
    from cxsim.experiment import run

    if args.threads is not None and args.threads < 1:
        raise ScenarioError(f"--threads: expected a whole number >= 1, got {args.threads}")
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise ScenarioError(f"--out {args.out}: expected a directory, found a file")
    s = _load(args)
    results = run(s, threads=args.threads, progress=False if args.json else None)
    if args.json:
        print(json.dumps(results.to_dict(), indent=1, allow_nan=False))
    else:
        print(f"{s.name}: {s.market.population} customers, {s.days} days, {len(results.runs)} replicates, "
              f"engine {results.engine}, ownership {s.ownership.model}\n")
        print(results.table().to_string(float_format=_number, na_rep="-"))
        dept = results.departments.groupby("department", sort=False).mean(numeric_only=True)
        print("\nper department (mean over replicates)")
        print(dept[["budget", "failures", "complaints_caused", "churn_attributed"]].to_string(
            float_format=lambda x: f"{x:,.0f}"))
    if args.out:
        for path in results.write(args.out):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_bench(args) -> int:
    from cxsim import bench

    sizes = bench.parse_sizes(args.sizes) if args.sizes else None
    for name in ("days", "repeats"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ScenarioError(f"--{name}: expected a whole number >= 1, got {getattr(args, name)}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ScenarioError(f"--out {args.out}: expected a directory, found a file")
    result = bench.run_bench(args.quick, sizes, args.days, args.repeats)
    print(bench.markdown(result))
    for path in bench.write(result, args.out):
        print(f"wrote {path}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxsim", description="Simulate who should own the customer experience.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario's replicates and report KPIs with 95% intervals")
    _scenario_options(run)
    run.add_argument("--threads", type=int, help="numba threads")
    run.add_argument("--out", help="directory for Parquet tables (runs, days, departments) and a PNG")
    run.add_argument("--json", action="store_true", help="print the result as one JSON object")
    run.set_defaults(func=cmd_run)
    bench = sub.add_parser("bench", help="benchmark the engines: throughput, scaling, memory, compile time")
    bench.add_argument("--quick", action="store_true",
                       help="a small smoke run (about a minute, mostly the cold compile; not the real figures)")
    bench.add_argument("--sizes", help="populations for the scaling table, e.g. 1e3,1e4,1e5")
    bench.add_argument("--days", type=int, help="days stepped per scaling run (sizes up to 10^6)")
    bench.add_argument("--repeats", type=int, help="alternating runs of each engine")
    bench.add_argument("--out", default="out/bench", help="directory for bench.json, bench.md and scaling.png")
    bench.set_defaults(func=cmd_bench)
    check = sub.add_parser("check", help="validate a scenario file and exit")
    _scenario_options(check)
    check.set_defaults(func=cmd_check)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ScenarioError as e:
        print(f"cxsim: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("cxsim: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an internal error: say so plainly; CXSIM_DEBUG=1 shows the traceback
        if os.environ.get("CXSIM_DEBUG"):
            raise
        print(f"cxsim: internal error: {type(e).__name__}: {e} (set CXSIM_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
