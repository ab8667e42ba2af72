"""The HTML report: built from a demo folder's JSON files alone (see `page.build_report`)."""

from bitlens.report.page import REPORT_FILE, build_report, render_report

__all__ = ["REPORT_FILE", "build_report", "render_report"]
