"""`ppsbot`: bot | worker | simulator | demo | check | report."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ppsbot", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("bot", help="run the Slack app (HTTP on $PORT, or Socket Mode) + notifier")
    w = sub.add_parser("worker", help="run an upgrade worker (any number may run)")
    w.add_argument("--name", default=None, help="consumer name (default: host-pid)")
    s = sub.add_parser("simulator", help="run the PPS cluster simulator")
    s.add_argument("--config", required=True, help="simulator YAML (clusters, ports, knobs)")
    s.add_argument("--host", default=None, help="listen address (default: the config's host)")
    sub.add_parser("demo", help="run the whole thing locally with a Slack stand-in page")
    sub.add_parser("check", help="validate settings + inventory and reach every node")
    r = sub.add_parser("report", help="print a job's change record (Markdown or JSON)")
    r.add_argument("job_id", help="the job id, e.g. J-0042")
    r.add_argument("--format", choices=("md", "json"), default="md", help="default: md")
    args = parser.parse_args(argv)

    if args.cmd == "bot":
        from bot.server import main as bot_main

        return bot_main()
    if args.cmd == "worker":
        from jobs.worker.process import main as worker_main

        return worker_main(name=args.name)
    if args.cmd == "simulator":
        from sim.pps.simulator import main as sim_main

        return sim_main(args.config, host=args.host)
    if args.cmd == "demo":
        from sim.demo.main import main as demo_main

        return demo_main()
    if args.cmd == "check":
        from bot.check import main as check_main

        return check_main()
    if args.cmd == "report":
        from bot.report_cli import main as report_main

        return report_main(args.job_id, args.format)
    parser.error(f"unknown command {args.cmd}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
