"""`spillover report`: one self-contained HTML file about a run folder (see load.py for what it
reads, charts.py for what it draws, page.py for the page)."""

from __future__ import annotations

from pathlib import Path

from agent.report.load import ReportError, RunData, load_run

__all__ = ["ReportError", "RunData", "load_run", "write_report"]


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the report of `run_dir` to `out` (default `run_dir/report.html`) and return its path.
    ReportError when the folder has nothing to report."""
    from agent.report.page import render

    run = load_run(Path(run_dir))
    target = Path(run_dir) / "report.html" if out is None else Path(out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(run), encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"{target}: cannot write: {exc.strerror or exc}") from exc
    return target
