"""Server-rendered HTML for the fleet page: no external assets, no JavaScript, everything escaped."""

from __future__ import annotations

import base64
import hashlib
from html import escape

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0}.sub{color:#5a6478;margin-bottom:18px}
table{border-collapse:collapse;width:100%;background:#fff;margin:8px 0 20px}
th,td{border:1px solid #dde2ea;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#eef1f6;font-weight:600}td.num{font-variant-numeric:tabular-nums}
.card{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:14px 16px;margin:0 0 16px}
.card table{margin:8px 0 0}.muted{color:#6b7588}.pill{display:inline-block;padding:1px 8px;border-radius:10px;
font-size:12px;font-weight:600}.ok{background:#e3f4e6;color:#1f6b2d}.bad{background:#fdeaea;color:#9b1c1c}
.warn{background:#fff3dc;color:#8a5a00}.none{background:#eef1f6;color:#5a6478}a{color:#1f5fbf}
code{font-size:12px;background:#f1f3f7;padding:0 3px;border-radius:3px}
"""



def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


# No script at all; the one inline stylesheet by its hash. The Airflow UI may show the page in its frame.
POLICY = (f"default-src 'none'; style-src 'sha256-{_sha256(STYLE)}'; base-uri 'none'; form-action 'none'; "
          "frame-ancestors 'self'")


def _e(value) -> str:
    return escape("" if value is None else str(value))


def _a(url: str | None, text) -> str:
    """A link; other sites (MLflow) open in a new tab, Airflow's own pages in the whole window (the page may
    be shown inside the Airflow UI's frame)."""
    if not url:
        return _e(text)
    target = "_blank" if url.startswith(("http://", "https://")) else "_top"
    return f'<a href="{_e(url)}" target="{target}" rel="noopener">{_e(text)}</a>'


def _pill(text: str, kind: str) -> str:
    return f'<span class="pill {kind}">{_e(text)}</span>'


def _metric(v: dict | None) -> str:
    if not v:
        return "-"
    value = v.get("value")
    return f"{_e(v.get('metric'))} {value:.4f}" if isinstance(value, (int, float)) else f"{_e(v.get('metric'))} -"


def _version(v: dict | None) -> str:
    return _a(v.get("mlflow_version_url"), f"v{v['version']}") if v else _pill("none", "none")


def _interval(v: dict | None) -> str:
    if not v or not v.get("window_first_day"):
        return "-"
    return f"{_e(v['window_first_day'])} .. {_e(v['window_last_day'])}"


def _validation(val: dict | None, docs_url: str) -> str:
    if not val:
        return _pill("none yet", "none")
    if val.get("success") is True:
        pill = _pill("passed", "ok")
    elif val.get("success") is False:
        pill = _pill(f"failed ({len(val.get('blocking_failures') or [])})", "bad")
    else:
        pill = _pill("unknown", "none")
    warn = f" {_pill(str(len(val['warnings'])) + ' warning(s)', 'warn')}" if val.get("warnings") else ""
    docs = f' &middot; {_a(docs_url, "Data Docs")}' if docs_url else ""
    return f"{pill}{warn}<br><span class=muted>{_e(val.get('time'))}</span>{docs}"


def _drift(d: dict | None, champion: dict | None = None) -> str:
    if not d:
        return _pill("not monitored yet", "none")
    kind = {"ok": "ok", "bad": "warn", "alarm": "bad"}[d["status"]]
    label = {"ok": "no drift", "bad": "bad check", "alarm": "ALARM"}[d["status"]]
    checked = d.get("champion_version")
    # An alarm that led to a retrain stays the newest check until the new champion is first checked.
    stale = (f"<br><span class=muted>of v{_e(checked)}; champion is v{_e(champion['version'])} now</span>"
             if champion and checked and str(checked) != str(champion.get("version")) else "")
    return f"{_pill(label, kind)} {_a(d.get('mlflow_run_url'), d['day'])}{stale}"


def _next_run(m: dict) -> str:
    state = m["airflow"].get("next_run")
    if not state:
        return '<span class=muted>DAG not parsed yet</span>'
    if state.get("is_paused"):
        return _pill("paused", "warn")
    when = state.get("next_dagrun_create_after")
    return (f"{_e(when)}<br><span class=muted>logical date {_e(state.get('next_dagrun'))}</span>"
            if when else '<span class=muted>none scheduled</span>')


def _promotion(v: dict | None) -> str:
    if not v or not v.get("promoted_at"):
        return "-"
    by = v.get("promoted_by") or ""
    return (f"{_e(v['promoted_at'][:19].replace('T', ' '))} UTC, {_e(v.get('promotion_action'))}<br>"
            f"<span class=muted>by {_e(by)}</span>")


def _serving(m: dict) -> str:
    """Deployed version (beside the champion's column), endpoint and replicas ready."""
    s = m.get("serving")
    if not s:
        return '<span class=muted>batch only</span>'
    if s["deployed"] == "-":
        return _pill("not deployed", "none")
    behind = s["deployed"] != s["champion"]
    ready_kind = "ok" if s["replicas_ready"] >= s["replicas"] else ("warn" if s["replicas_ready"] else "bad")
    endpoint = (f"<code>{_e(s['endpoint'])}</code>" if s["endpoint"] != "-"
                else '<span class=muted>no endpoint (servers stopped)</span>')
    return (f"{_a(s.get('deployed_version_url'), s['deployed'])}"
            + (f" {_pill('champion is ' + s['champion'], 'warn')}" if behind else "")
            + f"<br>{endpoint}<br>{_pill(str(s['ready']) + ' ready', ready_kind)}")


def _rollout(r: dict | None) -> str:
    """The last rollout: when, from which version to which, the verdict and the bake's figures."""
    if not r:
        return "<span class=muted>no rollout yet</span>"
    kind = {"deployed": "ok", "rolled_back": "bad", "running": "warn"}.get(r["verdict"], "none")
    move = (f"v{_e(r['from_version'])} &rarr; v{_e(r['to_version'])}" if r.get("from_version")
            else f"first rollout of v{_e(r['to_version'])}")
    lines = [f"{_e(r['started'][:19].replace('T', ' '))} UTC {move} {_pill(r['verdict'].replace('_', ' '), kind)}"]
    if r.get("failure"):
        lines.append(f"<span class=muted>at {_e(r['failure']['step'])}: {_e(r['failure']['reason'][:300])}</span>")
    b = r.get("bake")
    if b and b.get("requests"):
        shift = "".join(f", {label} {b[key]:.3f}" for key, label in (("psi", "PSI"), ("disagreement", "flips"))
                        if b.get(key) is not None)
        lines.append(f"<span class=muted>bake {_e(b['requests'])} req, errors {b.get('error_rate', 0):.1%}, "
                     f"p99 {b.get('p99_ms', 0):.0f} ms{_e(shift)}</span>")
    return "<br>".join(lines)


def _summary_row(m: dict) -> str:
    urls = m["airflow"]["dag_urls"]
    if m.get("error"):
        return (f"<tr><td><a href='#{_e(m['model'])}'>{_e(m['model'])}</a></td>"
                f"<td colspan=9>{_pill('error', 'bad')} {_e(m['error'].splitlines()[0])}</td>"
                f"<td>{_a(urls.get('train'), 'train DAG')}</td></tr>")
    ch = m.get("champion")
    return ("<tr>"
            f"<td><a href='#{_e(m['model'])}'>{_e(m['model'])}</a><br>"
            f"<span class=muted>{_e(m.get('owner'))}</span></td>"
            f"<td>{_version(ch)}</td><td>{_serving(m)}</td><td class=num>{_metric(ch)}</td><td>{_interval(ch)}</td>"
            f"<td>{_rollout((m.get('serving') or {}).get('rollout'))}</td>"
            f"<td>{_validation(m.get('last_validation'), m['airflow'].get('data_docs_url'))}</td>"
            f"<td>{_drift(m.get('last_drift'), ch)}</td><td>{_next_run(m)}</td><td>{_spend(m.get('cost'))}</td>"
            f"<td>{' '.join(_a(u, k) for k, u in urls.items())} &middot; {_a(m.get('mlflow_model_url'), 'MLflow')}</td>"
            "</tr>")


def _version_rows(m: dict) -> str:
    rows = []
    for label, key in (("champion", "champion"), ("previous champion", "previous_champion")):
        v = m.get(key)
        if not v:
            rows.append(f"<tr><th>{label}</th><td colspan=5>{_pill('none', 'none')}</td></tr>")
            continue
        trained = _a(v.get("airflow_run_url"), v.get("trained_by_run_id") or "-")
        sweep = v.get("sweep")
        if sweep:  # its parameters came from a sweep: link it and the trial that found them
            trained += (f"<br>parameters from {_a(sweep.get('run_url'), 'sweep')} (best trial "
                        f"{_a(sweep.get('best_trial_url'), '#' + str(sweep.get('best_trial') or '?'))})")
        rows.append(
            f"<tr><th>{label}</th><td>{_version(v)}</td><td class=num>{_metric(v)}</td><td>{_interval(v)}"
            f"<br><span class=muted>fingerprint <code>{_e(v.get('fingerprint'))}</code></span></td>"
            f"<td>{_promotion(v)}</td><td>{trained}<br>{_a(v.get('mlflow_run_url'), 'MLflow run')}</td></tr>")
    return ("<table><tr><th></th><th>version</th><th>primary metric</th><th>trained on (window)</th>"
            "<th>promoted</th><th>training run</th></tr>" + "".join(rows) + "</table>")


def _sweep(s: dict | None) -> str:
    """The newest hyperparameter sweep: how far it got and its best value."""
    if not s:
        return ""
    best = f"{s['best_value']:.4g}" if s.get("best_value") is not None else "-"
    state = {"FINISHED": ("done", "ok"), "RUNNING": ("running", "warn")}.get(str(s.get("status")), ("stopped", "warn"))
    return (f"<h3>Newest sweep</h3><p>{_pill(state[0], state[1])} {_a(s.get('run_url'), s.get('study'))}: "
            f"{s.get('trials_complete', 0)} complete, {s.get('trials_pruned', 0)} pruned, {s.get('trials_failed', 0)} "
            f"failed of {s.get('trials_target', 0)}; best {_e(s.get('metric'))} {best} "
            f"({_a(s.get('best_trial_url'), 'trial #' + str(s.get('best_trial') or '?'))})</p>")


def _explanation(champion: dict | None) -> str:
    """What the champion leans on: its features' share of the permutation importance, as small bars."""
    values = (champion or {}).get("explanation")
    if not champion or not values:
        return ""
    from mlops.explain import svg

    return (f"<h3>What v{_e(champion['version'])} leans on</h3><p class=muted>share of the holdout "
            f"{_e(champion.get('metric'))} lost when a feature is shuffled (permutation importance)</p>"
            f"<div class=explanation>{svg(values)}</div>")


def _spend(c: dict | None) -> str:
    """The summary row's cost cell: training GPU-hours and cost over the window, with the per-day bars."""
    if not c:
        return "-"
    from mlops.cost import spend_svg

    t = c["training"]
    served = c.get("serving") or {}
    money = t["total"]["cost"] + (served.get("cost") or 0.0)
    return (f"{t['total']['gpu_hours']:.2f} GPU-h &middot; {money:.2f} {_e(t['currency'] or served.get('currency'))}"
            f"<br>{spend_svg(t, width=120, height=24)}")


def _cost(c: dict | None) -> str:
    """The card's cost table: training by why it ran, serving, and what a retraining costs."""
    if not c:
        return ""
    from mlops.cost import spend_svg

    t = c["training"]
    cur = _e(t["currency"])
    rows = [f"<tr><td>{_e(kind)}</td><td class=num>{r['runs']}</td><td class=num>{r['gpu_hours']:.2f}</td>"
            f"<td class=num>{r['cost']:.2f}</td></tr>" for kind, r in t["by_kind"].items()]
    s = c.get("serving")
    if s:
        rows.append(f"<tr><td>serving ({s['replicas']} &times; {_e(s['pool'])})</td>"
                    f"<td class=num>{s['replica_hours']:.1f} replica-h</td><td class=num>{s['gpu_hours']:.2f}</td>"
                    f"<td class=num>{s['cost']:.2f}</td></tr>")
    est = c.get("retraining_estimate")
    note = (f"<p class=muted>one retraining costs about {est['cost']:.2f} {_e(est['currency'])} "
            f"({est['minutes']:.0f} min, mean of the last {est['runs']})</p>") if est else ""
    return (f"<h3>Cost, last {t['days']} days</h3>{spend_svg(t)}<table class=cost><tr><th>runs</th><th>count</th>"
            f"<th>GPU-hours</th><th>cost ({cur})</th></tr>" + "".join(rows) + "</table>" + note)


def _approvals(ap: dict | None) -> str:
    """Who may approve each gate, and the newest answers: verdict, who, when, their comment."""
    if not ap:
        return ""
    gates = " &middot; ".join(f"{_e(g)}: {_e(who)}" for g, who in ap["gates"].items())
    rows = [f"<tr><td>{_e(r['responded_at'][:19].replace('T', ' '))}</td><td>{_e(r['gate'])} v{_e(r['version'])}</td>"
            f"<td>{_pill(r['verdict'].replace('_', ' '), 'ok' if r['approved'] else 'bad')}</td>"
            f"<td>{_e(r.get('by') or 'timeout')}</td><td>{_e(r.get('comment') or '')}</td></tr>"
            for r in ap.get("recent") or []]
    table = ("<table class=approvals><tr><th>answered (UTC)</th><th>gate</th><th>verdict</th><th>by</th>"
             "<th>comment</th></tr>" + "".join(rows) + "</table>") if rows else (
        "<p class=muted>no approval requested yet</p>")
    return f"<h3>Approvals</h3><p class=muted>may approve: {gates}</p>{table}"


def _card(m: dict) -> str:
    head = (f"<div class=card id='{_e(m['model'])}'><h2>{_e(m['model'])}</h2>"
            f"<div class=muted>{_e(m.get('description'))}</div>")
    if m.get("error"):
        return head + f"<pre>{_e(m['error'])}</pre></div>"
    facts = (f"<div class=muted>owner {_e(m.get('owner'))} &middot; {_e(m.get('task'))} &middot; schedule "
             f"<code>{_e(m.get('schedule'))}</code> &middot; trains on <code>{_e(m.get('backend'))}</code></div>")
    extra = []
    d = m.get("last_drift")
    if d:
        extra.append(f"<p>Last drift check ({_e(d['day'])}, champion v{_e(d.get('champion_version'))}): "
                     f"{_drift(d)}{': ' + _e('; '.join(d['reasons'])) if d.get('reasons') else ''}</p>")
    val = m.get("last_validation")
    if val and val.get("blocking_failures"):
        extra.append(f"<p>Last validation failed: {_e(', '.join(val['blocking_failures']))}</p>")
    extra.append(_explanation(m.get("champion")))
    extra.append(_sweep(m.get("last_sweep")))
    extra.append(_cost(m.get("cost")))
    extra.append(_approvals(m.get("approvals")))
    a = m.get("last_audit")
    if a:
        extra.append(f"<p class=muted>Last alias move: {_e(a['time'][:19].replace('T', ' '))} UTC, {_e(a['alias'])} "
                     f"{_e(a.get('from_version') or '-')} &rarr; {_e(a['to_version'])} ({_e(a['action'])}) by "
                     f"{_e(a['actor'])}: {_e(a['reason'])}</p>")
    return head + facts + _version_rows(m) + "".join(extra) + "</div>"


def fleet_page(models: list[dict], *, user_name: str, airflow_base: str, mlflow_ui: str) -> str:
    if models:
        table = ("<table><tr><th>model</th><th>champion</th><th>deployed</th><th>metric</th><th>trained on</th>"
                 "<th>last rollout</th>"
                 "<th>last validation</th><th>last drift check</th><th>next training run</th><th>cost (30 days)</th>"
                 "<th>links</th></tr>"
                 + "".join(_summary_row(m) for m in models) + "</table>")
        cards = "".join(_card(m) for m in models)
    else:
        table, cards = "<p>No model you may read. Ask for read access to a model's DAGs.</p>", ""
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Model fleet</title>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{STYLE}</style></head><body>"
            f"<h1>Model fleet</h1><div class=sub>{len(models)} model(s) visible to {_e(user_name)} &middot; "
            f"{_a(airflow_base + '/', 'Airflow')} &middot; {_a(mlflow_ui, 'MLflow')} &middot; "
            f"{_a('api/models', 'JSON')}</div>{table}{cards}</body></html>")


def unauthenticated_page(detail: str, login: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Log in</title><style>{STYLE}</style>"
            f"</head><body><h1>Model fleet</h1><p>{_e(detail)}</p><p>{_a(login, 'Log in to Airflow')}, "
            "then come back to this page.</p></body></html>")
