"""The connector test kit: checks that a source reads, re-reads and resumes without losing a record."""

from __future__ import annotations

from syncline.testkit.checks import CheckResult, exit_status, format_results, run_checks

__all__ = ["CheckResult", "exit_status", "format_results", "run_checks"]
