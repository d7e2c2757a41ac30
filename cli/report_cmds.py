"""`report --from DATE --to DATE --out FILE.pdf [--csv FILE]`: the signed period report."""

from __future__ import annotations

import argparse
from typing import Any

from cli.context import Context, emit
from cli.parsing import add_command


def register(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    report = add_command(commands, parent, "report",
                         "the signed period report: requests, deadlines, time to erasure, "
                         "audit pass / fail, certificates issued", cmd_report)
    report.add_argument("--from", dest="start", required=True, metavar="DATE")
    report.add_argument("--to", dest="end", required=True, metavar="DATE")
    report.add_argument("--out", required=True, metavar="FILE.pdf")
    report.add_argument("--csv", metavar="FILE.csv", help="also one CSV row per request")
    report.add_argument("--overwrite", action="store_true")


def cmd_report(ctx: Context) -> int:
    from cli.certificate_cmds import passphrase
    from reports.key_admin import has_signing_key
    from reports.period_report import parse_day, preview, write_report

    a = ctx.args
    start, end = parse_day(a.start, "from"), parse_day(a.end, "to")
    preview(ctx.workspace, start, end)  # refuse a bad period before asking for a passphrase
    secret = passphrase(ctx, confirm=not has_signing_key(ctx.workspace))
    result = write_report(ctx.workspace, start, end, a.out, operator=ctx.operator,
                          passphrase=secret, csv_out=a.csv, overwrite=a.overwrite)
    emit(ctx, result, _render)
    return 0


def _render(r: dict[str, Any]) -> str:
    c, t = r["counts"], r["time_to_erasure"]
    timing = ("" if not t["count"] else
              f"; time to erasure median {t['median']:.1f} d, p90 {t['p90']:.1f} d, "
              f"worst {t['worst']:.1f} d")
    csv = f" and {r['csv']}" if r["csv"] else ""
    return (f"Report {r['period']['from']} to {r['period']['to']} written to {r['pdf']}{csv}: "
            f"{c['received']} received, {c['approved']} approved, {c['rejected']} rejected, "
            f"{c['executed']} executed, {c['certified']} certified; {len(r['overdue'])} "
            f"overdue, {len(r['at_risk'])} due within 7 days{timing}.")
