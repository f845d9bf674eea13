"""The HTML report of one monitoring check: the verdict first, then for each column its reference and
current distributions side by side (inline SVG, no scripts, no downloads) with its statistics."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from mlops.drift import stats

REF_COLOUR, CUR_COLOUR = "#7a8fa6", "#e07b39"


def _bars(labels: list[str], reference: np.ndarray, current: np.ndarray, width: int = 420, height: int = 140) -> str:
    """Grouped bars of two proportion vectors."""
    k = max(len(labels), 1)
    top = max(float(np.max(reference, initial=0)), float(np.max(current, initial=0)), 1e-9)
    slot = width / k
    bar = max(slot / 2 - 2, 1)
    parts = [f'<svg width="{width}" height="{height + 28}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, r, c) in enumerate(zip(labels, reference, current, strict=True)):
        x = i * slot
        for j, (value, colour) in enumerate(((r, REF_COLOUR), (c, CUR_COLOUR))):
            h = value / top * height
            parts.append(f'<rect x="{x + 1 + j * (bar + 1):.1f}" y="{height - h:.1f}" width="{bar:.1f}" '
                         f'height="{h:.1f}" fill="{colour}"><title>{html.escape(label)}: {value:.1%}</title></rect>')
        if k <= 12:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{height + 14}" font-size="9" text-anchor="middle">'
                         f'{html.escape(label[:10])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _column_chart(entry: dict[str, Any], current: pd.Series) -> str:
    values = current.dropna()
    if entry["kind"] == "numeric" and "psi_edges" in entry:
        edges = np.asarray(entry["psi_edges"])
        ref = np.asarray(entry["psi_counts"], dtype=float)
        cur = stats.bin_counts(pd.to_numeric(values).to_numpy(dtype="float64"), edges).astype(float)
        labels = [f"≤{e:.3g}" for e in edges] + [f">{edges[-1]:.3g}" if len(edges) else "all"]
    elif entry["kind"] == "categorical":
        freq = entry.get("frequencies", {})
        counts = values.astype(str).value_counts()
        labels = list(freq)[:12] + [c for c in counts.index if c not in freq][:3]
        ref = np.array([freq.get(c, 0) for c in labels], dtype=float)
        cur = np.array([counts.get(c, 0) for c in labels], dtype=float)
    else:
        return "<p>no values</p>"
    return _bars(labels, ref / max(ref.sum(), 1), cur / max(cur.sum(), 1))


IGNORED_NOTE = "not counted: the spec's monitoring.columns says ignore"


def _state(col: dict[str, Any], ignored: set[str]) -> str:
    """An ignored column is never 'drifted': the verdict leaves it out whatever its statistics say."""
    if col["column"] in ignored:
        return '<span style="color:#666">ignored</span>'
    return '<b style="color:#b00020">drifted</b>' if col["drifted"] else "stable"


def render_html(record: dict[str, Any], profile: dict[str, Any], frame: pd.DataFrame) -> str:
    verdict = "ALARM: retraining requested" if record["alarm"] else ("drift seen" if record["bad"] else "stable")
    colour = "#b00020" if record["alarm"] else ("#a86b00" if record["bad"] else "#1b7f3b")
    ignored = set(record["ignored_columns"])
    rows = []
    for col in record["columns"]:
        entry = profile["columns"][col["column"]]
        figures = "<br>".join(f"{html.escape(k)}: {v:.4g}" if isinstance(v, float)
                              else f"{html.escape(k)}: {html.escape(str(v))}"
                              for k, v in col["statistics"].items())
        notes = ([IGNORED_NOTE] if col["column"] in ignored else []) + col["reasons"] + col["notes"]
        why = "<br>".join(html.escape(r) for r in notes) or "—"
        state = _state(col, ignored)
        rows.append(f"<tr><td><b>{html.escape(col['column'])}</b><br>{col['kind']}<br>{state}</td>"
                    f"<td>{_column_chart(entry, frame[col['column']])}</td><td>{figures}</td><td>{why}</td></tr>")
    quality = record["quality"]
    quality_line = (f"{quality['metric']} {quality['value']:.4g} on {quality['labelled_day']} (at training "
                    f"{quality['reference']:.4g}; degradation {quality['degradation']:.4g})"
                    if quality.get("status") == "measured"
                    else f"{quality.get('status', 'n/a')} for {quality.get('labelled_day')}")
    return f"""<!doctype html><html><head><meta charset="utf-8">\
<title>{html.escape(record['model'])} monitor {record['day']}</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;color:#222}}\
td{{vertical-align:top;padding:6px 10px;border-top:1px solid #ddd}}
.key span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}}</style></head><body>
<h1>{html.escape(record['model'])}: check of {record['day']}</h1>
<p style="font-size:1.3em;color:{colour}"><b>{verdict}</b></p>
<ul><li>champion v{record['champion_version']} (trained on data up to {record['champion_window_last_day']})</li>
<li>{record['rows']} rows; drift verdict: {html.escape(record['drift_verdict'])}</li>
<li>quality: {html.escape(quality_line)}</li>
<li>alarm rule: {html.escape('; '.join(record['alarm_reasons']))}</li></ul>
<p class="key">reference <span style="background:{REF_COLOUR}"></span> \
current <span style="background:{CUR_COLOUR}"></span></p>
<table><tr><th>column</th><th>distribution</th><th>statistics</th><th>why</th></tr>{''.join(rows)}</table>
</body></html>"""
