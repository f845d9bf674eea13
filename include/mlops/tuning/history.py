"""The sweep's optimisation history as an SVG (an MLflow artifact of the sweep's run): each finished trial's
value by trial number (pruned ones hollow, at the value they were stopped with) and the best so far as a line."""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, HEIGHT, PAD = 560, 300, 44


def svg(summary: dict[str, Any], metric: str) -> str:
    maximize = summary.get("direction") == "maximize"
    points = [(int(t["number"]), float(t["value"]), str(t["state"])) for t in summary["history"]
              if t["state"] in ("complete", "pruned") and t["value"] is not None]
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" '
            'font-size="11">')
    title = (f'<text x="{PAD}" y="16" font-weight="bold">{escape(summary.get("study", ""))}: {escape(metric)} by '
             f'trial ({"higher" if maximize else "lower"} is better)</text>')
    if not points:
        return head + title + f'<text x="{PAD}" y="{HEIGHT // 2}">no finished trials yet</text></svg>'
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = min(ys), max(ys)
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def px(x: float) -> float:
        return float(PAD + (x - x0) / (x1 - x0) * (WIDTH - 2 * PAD))

    def py(y: float) -> float:
        return HEIGHT - PAD - (y - y0) / (y1 - y0) * (HEIGHT - 2 * PAD)

    parts = [head, title,
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#888"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#888"/>',
             f'<text x="{PAD}" y="{HEIGHT - PAD + 16}">{x0}</text>',
             f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 16}" text-anchor="end">trial {x1}</text>',
             f'<text x="{PAD - 4}" y="{py(y1) + 4:.1f}" text-anchor="end">{y1:.4g}</text>',
             f'<text x="{PAD - 4}" y="{py(y0) + 4:.1f}" text-anchor="end">{y0:.4g}</text>']
    best: float | None = None
    line = []
    for x, y, state in points:
        fill = "#3b6fb6" if state == "complete" else "none"
        parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{fill}" stroke="#3b6fb6">'
                     f'<title>trial {x}: {y:.6g} ({state})</title></circle>')
        if state == "complete" and (best is None or (y > best if maximize else y < best)):
            best = y
        if best is not None:
            line.append(f"{px(x):.1f},{py(best):.1f}")
    if line:
        parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="#d9822b" stroke-width="2"/>')
    parts.append(f'<text x="{WIDTH - PAD}" y="16" text-anchor="end" fill="#d9822b">best so far: {best:.6g}</text>'
                 if best is not None else "")
    parts.append("</svg>")
    return "".join(parts)
