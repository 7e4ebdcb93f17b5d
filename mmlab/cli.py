"""The ``mmlab`` command: synthetic markets, calibration, backtests and reports.

Every user error (a bad parameter, a corrupt tape, a missing file) ends with one line
``mmlab: error: ...`` naming the file or field, and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main"]

DEFAULT_REPORT_NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "00_backtest_report.ipynb"


class UserError(Exception):
    """An error caused by the command's input, reported in one line."""


def _cmd_synth(args: argparse.Namespace) -> int:
    from mmlab.data.synth import SynthConfig, generate

    config = SynthConfig(seed=args.seed, minutes=args.minutes, informed_fraction=args.informed_fraction)
    market = generate(config)
    out = market.write(args.out)
    tape = market.tape
    print(
        f"synthetic market: {len(tape):,} events over {tape.span_s / 60:.1f} min, "
        f"{len(market.orders):,} market orders, seed {config.seed}, config {config.hash_id}"
    )
    print(f"wrote {out / 'tape.parquet'} and the truth beside it")
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    from mmlab.config import SimConfig, StrategyConfig, load_config
    from mmlab.data.tape import read_tape
    from mmlab.sim.backtest import run_backtest, with_maker_fee

    tape = read_tape(args.tape)
    if args.minutes is not None:
        if args.minutes <= 0:
            raise UserError(f"--minutes must be > 0, got {args.minutes}")
        tape = tape.slice_time(None, int(tape.ts_local[0]) + int(args.minutes * 60e9))
    strategy = load_config(args.config, StrategyConfig) if args.config else StrategyConfig(instrument=tape.instrument)
    sim = load_config(args.sim_config, SimConfig) if args.sim_config else SimConfig()
    if args.maker_fee_bps is not None:
        strategy, sim = with_maker_fee(strategy, sim, args.maker_fee_bps)
    result = run_backtest(tape, strategy, sim)
    out = result.write(args.out)
    s = result.summary
    print(
        f"backtest {s.coin}: {s.cycles:,} cycles, {s.fills:,} fills, PnL {s.pnl_usd:+.2f} USD "
        f"(spread {s.spread_capture_usd:+.2f}, inventory {s.inventory_pnl_usd:+.2f}, fees {s.fees_usd:+.2f}, "
        f"funding {s.funding_usd:+.2f}), max |q| {s.max_abs_position:g}, {s.wall_s:.1f} s"
    )
    print(f"wrote {out}")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from mmlab.calibrate.strategy import calibrate_strategy
    from mmlab.config import SimConfig, StrategyConfig, load_config, save_config
    from mmlab.data.tape import read_tape
    from mmlab.sim.backtest import with_maker_fee

    tapes = [read_tape(path) for path in args.tape]
    base = load_config(args.base, StrategyConfig) if args.base else None
    if args.maker_fee_bps is not None:
        base = with_maker_fee(base or StrategyConfig(instrument=tapes[0].instrument), SimConfig(), args.maker_fee_bps)[0]
    try:
        calibration = calibrate_strategy(tapes, base=base)
    except ValueError as err:  # a tape the fits cannot use: name the tapes
        raise UserError(f"{', '.join(args.tape)}: {err}") from None
    out = save_config(calibration.config, args.out, provenance={"calibrated_on": list(calibration.sources)})
    print(calibration.summary())
    print(f"wrote {out} (config {calibration.config.hash_id})")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from mmlab.reports import render_notebook

    run_dir = Path(args.run)
    if not (run_dir / "summary.json").exists():
        raise UserError(f"{run_dir / 'summary.json'}: no backtest summary; run `mmlab backtest` first")
    html = render_notebook(
        Path(args.notebook),
        Path(args.out),
        parameters={"run_dir": str(run_dir.resolve())},
    )
    print(f"report: {html}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from mmlab.data.importers import import_file
    from mmlab.data.tape import write_tape

    options = dict(option.split("=", 1) for option in args.option or [])
    result = import_file(args.source, args.format, strict=not args.lenient, **options)
    print(result.report.summary())
    out = write_tape(result.tape, args.out)
    print(f"wrote {out}")
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    import asyncio

    from mmlab.data.recorder import Recorder

    if args.max_seconds is not None and args.max_seconds <= 0:
        raise UserError(f"--max-seconds must be > 0, got {args.max_seconds}")
    if args.max_messages is not None and args.max_messages <= 0:
        raise UserError(f"--max-messages must be > 0, got {args.max_messages}")
    try:
        recorder = Recorder(
            args.url,
            args.coin,
            args.out,
            max_seconds=args.max_seconds,
            max_messages=args.max_messages,
            handle_signals=True,
        )
    except ValueError as err:
        raise UserError(str(err)) from err
    print(f"recording {args.coin} from {args.url} into {Path(args.out) / args.coin}; Ctrl-C stops", flush=True)
    s = asyncio.run(recorder.run())
    print(
        f"recorded {s.messages:,} messages over {s.duration_s:.1f} s, {s.connections} connections, "
        f"{s.gaps} gaps, into {len(s.paths)} files"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmlab", description="Market-making research workbench for Hyperliquid perps.")
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="generate a synthetic market with known ground truth")
    synth.add_argument("--minutes", type=float, default=60.0, help="length of the market, minutes")
    synth.add_argument("--seed", type=int, default=7, help="random seed; the output is a function of it")
    synth.add_argument("--informed-fraction", type=float, default=0.2, help="share of informed market orders")
    synth.add_argument("--out", required=True, help="directory for tape.parquet and the truth files")
    synth.set_defaults(func=_cmd_synth)

    backtest = sub.add_parser("backtest", help="run the quote pipeline over a tape on the simulated venue")
    backtest.add_argument("--tape", required=True, help="tape parquet file")
    backtest.add_argument("--out", required=True, help="run directory to write")
    backtest.add_argument("--config", help="strategy parameters file (JSON written by mmlab)")
    backtest.add_argument("--sim-config", help="simulated-venue parameters file (JSON written by mmlab)")
    backtest.add_argument("--minutes", type=float, help="only the first N minutes of the tape")
    backtest.add_argument(
        "--maker-fee-bps", type=float, help="maker fee tier in bps, negative for a rebate (venue and pricing alike)"
    )
    backtest.set_defaults(func=_cmd_backtest)

    calibrate = sub.add_parser("calibrate", help="fit the strategy's sensor and fill intensities from tapes into a parameters file")
    calibrate.add_argument("--tape", required=True, action="append", help="tape parquet file (repeat for several of one coin)")
    calibrate.add_argument("--out", required=True, help="strategy parameters file (JSON) to write")
    calibrate.add_argument("--base", help="parameters file whose preferences (γ, caps, fee) to keep")
    calibrate.add_argument("--maker-fee-bps", type=float, help="maker fee tier in bps, negative for a rebate")
    calibrate.set_defaults(func=_cmd_calibrate)

    imp = sub.add_parser("import", help="import a real recording into a tape, with a validation report")
    imp.add_argument("source", help="recording file (or folder, for formats spread over several files)")
    imp.add_argument("--format", required=True, help="one of: " + ", ".join(sorted(_format_names())))
    imp.add_argument("--out", required=True, help="tape parquet file to write")
    imp.add_argument("--lenient", action="store_true", help="skip bad lines and list them in the report instead of stopping")
    imp.add_argument("--option", action="append", metavar="KEY=VALUE", help="format-specific option (repeatable)")
    imp.set_defaults(func=_cmd_import)

    report = sub.add_parser("report", help="execute the backtest report notebook and render it to HTML")
    report.add_argument("--run", required=True, help="run directory written by mmlab backtest")
    report.add_argument("--out", required=True, help="directory for the executed notebook and HTML")
    report.add_argument("--notebook", default=str(DEFAULT_REPORT_NOTEBOOK), help="notebook template")
    report.set_defaults(func=_cmd_report)

    record = sub.add_parser("record", help="record Hyperliquid's public websocket feed for one coin into hourly gzip files")
    record.add_argument("--coin", required=True, help="Hyperliquid coin name, for example BTC")
    record.add_argument("--out", default="data/recordings", help="root folder; files go to <out>/<COIN>/<YYYYMMDD>/<HH>.jsonl.gz")
    record.add_argument("--url", default="wss://api.hyperliquid.xyz/ws", help="websocket endpoint")
    record.add_argument("--max-seconds", type=float, help="stop after this many seconds (default: until Ctrl-C or SIGTERM)")
    record.add_argument("--max-messages", type=int, help="stop after this many received messages")
    record.set_defaults(func=_cmd_record)
    return parser


def _format_names() -> list[str]:
    from mmlab.data.importers import FORMATS

    return list(FORMATS)


def main(argv: Sequence[str] | None = None) -> int:
    from mmlab.config import ConfigError
    from mmlab.data.importers import ImportError_
    from mmlab.data.tape import TapeError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ConfigError, TapeError, ImportError_, FileNotFoundError) as err:
        print(f"mmlab: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
