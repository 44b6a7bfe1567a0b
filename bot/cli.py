"""`ppsbot`: bot | worker | simulator | demo | check | backups verify | diff | report."""

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
    b = sub.add_parser("backups", help="stored configuration backups")
    bsub = b.add_subparsers(dest="backups_cmd", required=True)
    v = bsub.add_parser("verify", help="re-check backups against their manifests (exit 1 on "
                        "any problem)")
    which = v.add_mutually_exclusive_group()
    which.add_argument("job_id", nargs="?", default=None, help="one job's backup")
    which.add_argument("--all", action="store_true", help="every backup (the default)")
    v.add_argument("--dir", default=None, help="backup folder (default: $PPS_BACKUP_DIR)")
    d = sub.add_parser("diff", help="print a job's stored configuration drift")
    d.add_argument("job_id", help="the job id, e.g. J-0042")
    d.add_argument("--backup-dir", default=None, help="backup folder (default: from Redis)")
    d.add_argument("--cluster", default=None, help="the job's cluster (with --backup-dir)")
    d.add_argument("--json", action="store_true", help="the stored diff as JSON")
    r = sub.add_parser("report", help="print a job's change record (Markdown or JSON)")
    r.add_argument("job_id", help="the job id, e.g. J-0042")
    r.add_argument("--format", choices=("md", "json"), default="md", help="default: md")
    args = parser.parse_args(argv)

    if args.cmd == "bot":
        from bot.server import main as bot_main

        return bot_main()
    if args.cmd == "worker":
        from jobs.worker.entry import main as worker_main

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
    if args.cmd == "backups":
        from bot.backups import main as backups_main

        return backups_main(args.job_id, args.dir)
    if args.cmd == "diff":
        from bot.diff import main as diff_main

        return diff_main(
            args.job_id, backup_base=args.backup_dir, cluster=args.cluster, as_json=args.json
        )
    if args.cmd == "report":
        from bot.report_cli import main as report_main

        return report_main(args.job_id, args.format)
    parser.error(f"unknown command {args.cmd}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
