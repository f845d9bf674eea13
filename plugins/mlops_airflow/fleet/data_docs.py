"""GX Data Docs as the fleet app serves them: inert and self-contained.

GX writes data values (e.g. a column's unexpected values) into its pages as raw HTML, and its pages load
jQuery, Bootstrap and Vega from public CDNs. So every file of the site is served under a sandbox policy (no
script runs, the page gets an opaque origin: it cannot use the user's Airflow session), and HTML pages are
rewritten: scripts, <link>s and other sites' images and CSS urls removed, a small local stylesheet inlined.
The rewriting is for reading offline; the policy is what keeps the page harmless.

GX's index page builds its tables with JavaScript, so the index is rendered here from the site's files.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from html import escape
from pathlib import Path

# No allow-scripts, no allow-same-origin. Subresource requests of a sandboxed page carry no SameSite
# cookie, so nothing of the site could load anyway: styles are inline, images only as data: URIs.
POLICY = ("sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
          "form-action 'none'; frame-ancestors 'self'")

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>|<script\b[^>]*/?>", re.I | re.S)
_LINK = re.compile(r"<link\b[^>]*>", re.I)
_EXTERNAL_IMG = re.compile(r"""<img\b[^>]*\bsrc\s*=\s*["']?\s*(?:https?:)?//[^>]*>""", re.I)
_EXTERNAL_CSS_URL = re.compile(r"""url\(\s*["']?\s*(?:https?:)?//[^)]*\)""", re.I)
_HEAD_END = re.compile(r"</head\s*>", re.I)

# What Bootstrap and Font Awesome did for GX's markup, as far as reading the page needs.
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#fafbfc}
a{color:#1f5fbf}.navbar{display:flex;align-items:center;min-height:40px;height:auto!important;padding:6px 24px;
background:#fff;border-bottom:1px solid #dde2ea}.navbar-brand{display:none}
.breadcrumb{display:flex;flex-wrap:wrap;list-style:none;margin:0;padding:0}
.breadcrumb-item+.breadcrumb-item::before{content:"/";padding:0 6px;color:#6b7588}
.container-fluid{padding:12px 24px}.row{display:flex;flex-wrap:wrap}.col-12{flex:0 0 100%}
.col-md-2{flex:0 0 16%;max-width:16%}.col-md-10{flex:0 0 82%;max-width:82%}
.col-md-2>*{padding-right:12px}.sticky{position:sticky;top:8px}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 14px}
th,td{border:1px solid #dde2ea;padding:4px 8px;text-align:left;vertical-align:top}th{background:#eef1f6}
.card{background:#fff;border:1px solid #dde2ea;border-radius:6px;margin:0 0 12px}
.card-header{padding:6px 10px;background:#eef1f6;border-bottom:1px solid #dde2ea}.card-body{padding:8px 10px}
.alert{padding:8px 12px;border-radius:4px;margin:8px 0;background:#eef1f6}
.alert-danger,.text-danger{color:#9b1c1c}.alert-danger{background:#fdeaea}
.alert-success,.text-success{color:#1f6b2d}.alert-success{background:#e3f4e6}
.text-warning{color:#8a5a00}
.d-none,.modal,.btn,.btn-group,.sr-only,.cooltip .top,footer,.card:has(.btn-group){display:none}
.ge-breadcrumbs{display:flex!important}
.badge{display:inline-block;padding:0 6px;border-radius:8px;background:#eef1f6;margin:1px}
.fas::before,.fa::before{font-style:normal;font-weight:700}
.fa-check-circle::before,.fa-check::before{content:"\\2713  "}
.fa-times::before,.fa-times-circle::before{content:"\\2717  "}
.fa-exclamation-triangle::before{content:"!  "}
pre,code{font-size:12px;background:#f1f3f7;white-space:pre-wrap}.show-scrollbars{overflow:auto}
"""


def offline_page(html: str) -> str:
    """A GX page without scripts or anything from another site, with the local stylesheet."""
    html = _without(_SCRIPT, html)
    html = _LINK.sub("", html)
    html = _EXTERNAL_IMG.sub("", html)
    html = _EXTERNAL_CSS_URL.sub("none", html)
    style = f"<style>{STYLE}</style>"
    html, found = _HEAD_END.subn(lambda _: style + "</head>", html, count=1)
    return html if found else style + html


def _without(pattern: re.Pattern, text: str) -> str:
    """Remove until nothing matches: a removal must not join two fragments into a new match."""
    while True:
        text, n = pattern.subn("", text)
        if not n:
            return text


# --- the index --------------------------------------------------------------------------------------------

# GX's index keeps each validation's status in its table data (a Python literal in a script).
_INDEX_STATUS = re.compile(r"'_table_row_link_path': '([^']+)', '_validation_success_text': '(\w+)'")


def _run_time(segment: str) -> str:
    try:
        when = datetime.strptime(segment, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return segment
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def validation_pages(site: Path) -> list[dict]:
    """Every validation result page of the site, newest first: validations/<suite parts>/<run name>/
    <run time>/<batch>.html, as GX's site builder lays them out."""
    statuses = {}
    index = site / "index.html"
    if index.is_file():
        statuses = dict(_INDEX_STATUS.findall(index.read_text(encoding="utf-8", errors="replace")))
    rows = []
    for page in (site / "validations").rglob("*.html"):
        parts = page.relative_to(site).parts
        if len(parts) < 5:
            continue
        path = page.relative_to(site).as_posix()
        rows.append({"path": path, "suite": ".".join(parts[1:-3]), "run_name": parts[-3],
                     "run_time": _run_time(parts[-2]), "sort": parts[-2], "batch": page.stem,
                     "status": statuses.get(path, "")})
    return sorted(rows, key=lambda r: (r["sort"], r["path"]), reverse=True)


def suite_pages(site: Path) -> list[dict]:
    pages = (p.relative_to(site) for p in (site / "expectations").rglob("*.html"))
    return sorted(({"path": p.as_posix(), "suite": ".".join(p.with_suffix("").parts[1:])} for p in pages),
                  key=lambda r: r["suite"])


def _status(text: str) -> str:
    kind = {"Failed": "text-danger", "Success": "text-success"}.get(text, "")
    return f'<span class="{kind}">{escape(text or "-")}</span>'


def index_page(site: Path, model: str) -> str:
    """The site's index without JavaScript: the validation results and the expectation suites."""
    rows = "".join(
        f"<tr><td>{_status(r['status'])}</td><td><a href=\"{escape(r['path'])}\">{escape(r['run_time'])}</a></td>"
        f"<td>{escape(r['suite'])}</td><td>{escape(r['batch'])}</td>"
        f"<td>{escape(r['run_name'])}</td></tr>" for r in validation_pages(site))
    suites = "".join(f"<li><a href=\"{escape(s['path'])}\">{escape(s['suite'])}</a></li>" for s in suite_pages(site))
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>Data Docs: {escape(model)}</title><style>{STYLE}</style></head><body>"
            f"<div class=container-fluid><h1>Data Docs: {escape(model)}</h1>"
            "<h2>Validation results</h2><table><tr><th>status</th><th>run time</th><th>expectation suite</th>"
            f"<th>batch</th><th>run name</th></tr>{rows}</table>"
            f"<h2>Expectation suites</h2><ul>{suites}</ul></div></body></html>")
