"""Evaluation outputs: a results JSON, TREC run files, per-query scores, a PNG and an HTML report.

The HTML report is self-contained (the plot is embedded as a data URI), so it can be mailed
or opened from anywhere. The plot needs matplotlib (the ``eval`` extra); without it the
report is written without the plot and says how to add it, and nothing else depends on it.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from .evaluate import ConfigResult, write_trec_run


def results_json(dataset: str, results: list[ConfigResult]) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "queries": len(results[0].per_query) if results else 0,
        "configs": [
            {
                "name": r.config.name,
                "config": r.config.spec(),
                "metrics": r.mean,
                "p_values_vs_first": r.p_values,
            }
            for r in results
        ],
    }


def plot_png(results: list[ConfigResult], metrics: list[str]) -> bytes | None:
    """Grouped bars: one group per metric, one bar per configuration (None: no matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    width_in = min(14, max(6, 0.7 * len(metrics) * max(1, len(results))))
    fig, ax = plt.subplots(figsize=(width_in, 4))
    width = 0.8 / max(1, len(results))
    for i, r in enumerate(results):
        xs = [m + i * width for m in range(len(metrics))]
        bars = ax.bar(xs, [r.mean[m] for m in metrics], width, label=r.config.name)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, rotation=90, padding=2)
    ax.set_xticks([m + width * (len(results) - 1) / 2 for m in range(len(metrics))], metrics)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("score")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return buf.getvalue()


def _html(dataset: str, results: list[ConfigResult], metrics: list[str], png: bytes | None) -> str:
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    rows = []
    for r in results:
        cells = []
        for m in metrics:
            p = r.p_values.get(m)
            mark = "" if p is None else f"<br><small>p={p:.3f}{' *' if p < 0.05 else ''}</small>"
            cells.append(f"<td>{r.mean[m]:.4f}{mark}</td>")
        spec = html.escape(", ".join(f"{k}={v}" for k, v in r.config.spec().items()))
        rows.append(
            f"<tr><th>{html.escape(r.config.name)}<br><small>{spec}</small></th>{''.join(cells)}</tr>"
        )
    if png is None:
        figure = (
            "<p>No plot: matplotlib is not installed. "
            "<code>pip install 'kenning[eval]'</code> adds it.</p>"
        )
    else:
        img = base64.b64encode(png).decode()
        figure = f'<img alt="metrics per configuration" src="data:image/png;base64,{img}">'
    first = html.escape(results[0].config.name) if results else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kenning eval: {html.escape(dataset)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.4em .7em;text-align:right}}
th:first-child{{text-align:left}}small{{color:#666}}</style></head><body>
<h1>Retrieval evaluation: {html.escape(dataset)}</h1>
<p>{len(results[0].per_query) if results else 0} queries. p-values: paired bootstrap against
<b>{first}</b> (10,000 resamples); * marks p &lt; 0.05.</p>
<table><tr><th>config</th>{head}</tr>{"".join(rows)}</table>
<h2>Metrics per configuration</h2>
{figure}
</body></html>
"""


def write_report(out: Path, dataset: str, results: list[ConfigResult]) -> dict[str, Path]:
    """Write every output into ``out``; returns what was written, by kind."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = list(results[0].mean) if results else []
    written = {
        "results": out / "results.json",
        "report": out / "report.html",
        "per_query": out / "per_query.json",
    }
    written["results"].write_text(json.dumps(results_json(dataset, results), indent=2))
    written["per_query"].write_text(
        json.dumps({r.config.name: r.per_query for r in results}, indent=1)
    )
    for r in results:
        write_trec_run(out / f"{r.config.name}.run", r.config.name, r.run)
    png = plot_png(results, metrics)
    if png is not None:
        written["plot"] = out / "metrics.png"
        written["plot"].write_bytes(png)
    written["report"].write_text(_html(dataset, results, metrics, png))
    return written
