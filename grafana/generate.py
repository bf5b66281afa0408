#!/usr/bin/env python3
"""Writes tasklane's Grafana dashboards (grafana/dashboards/*.json) from the panel lists below,
so every dashboard has a stable uid and the same layout rules, and `scripts/test` can check
that the committed files are what this writes (`--check`), that every PromQL query names only
exported metrics, and that every SQL query runs against the schema.

Usage: grafana/generate.py [--check]
"""
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
MYSQL = {"type": "mysql", "uid": "tasklane-mysql"}


def prom(title, unit, *queries, kind="timeseries"):
    """A panel of PromQL queries, each (expr, legend)."""
    targets = [
        {"refId": chr(ord("A") + i), "datasource": PROMETHEUS, "expr": expr, "legendFormat": legend}
        for i, (expr, legend) in enumerate(queries)
    ]
    return {"type": kind, "title": title, "datasource": PROMETHEUS, "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}}


def sql(title, query, kind="table", fmt="table", unit="none"):
    """A panel of one SQL query on the tasklane database (read-only user)."""
    target = {"refId": "A", "datasource": MYSQL, "rawQuery": True, "editorMode": "code", "format": fmt,
              "rawSql": query}
    return {"type": kind, "title": title, "datasource": MYSQL, "targets": [target],
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}}


def quantiles(metric, by, legend):
    return [(f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket[$__rate_interval])))",
             f"p{int(q * 100)} {legend}") for q in (0.5, 0.95, 0.99)]


JOBS = [
    prom("Jobs finished, by outcome", "ops",
         ("sum by (outcome) (rate(tasklane_jobs_total[$__rate_interval]))", "{{outcome}}")),
    prom("Jobs finished, by queue", "ops",
         ("sum by (queue) (rate(tasklane_jobs_total{outcome=\"success\"}[$__rate_interval]))", "{{queue}}"),
         ("sum by (queue) (rate(tasklane_jobs_enqueued_total[$__rate_interval]))", "enqueued {{queue}}")),
    prom("Job duration", "s", *quantiles("messaging_process_duration_seconds", "messaging_destination_name",
                                          "{{messaging_destination_name}}")),
    prom("Queue wait (enqueue to start)", "s", *quantiles("tasklane_job_queue_wait_seconds", "queue", "{{queue}}")),
    prom("Queue depth", "short",
         ("max by (queue, state) (tasklane_queue_jobs{state!=\"dead_letter\"})", "{{queue}} {{state}}")),
    prom("Dead letters", "short",
         ("max by (queue) (tasklane_queue_jobs{state=\"dead_letter\"})", "{{queue}}")),
    prom("Oldest ready job", "s",
         ("max by (queue) (tasklane_queue_oldest_ready_age_seconds)", "{{queue}}")),
    prom("Outbox", "short",
         ("max(tasklane_outbox_backlog_events)", "events waiting"),
         ("max(tasklane_outbox_oldest_age_seconds)", "oldest wait (s)")),
    prom("Worker replicas", "short", ("count(up{job=\"tasklane-worker\"} == 1)", "up"), kind="stat"),
    prom("Notifications and outside calls", "ops",
         ("sum by (channel, outcome) (rate(tasklane_notifications_total[$__rate_interval]))", "{{channel}} {{outcome}}"),
         ("sum by (service, outcome) (rate(tasklane_outbound_requests_total[$__rate_interval]))", "{{service}} {{outcome}}")),
]

API = [
    prom("Requests, by route", "reqps",
         ("sum by (route) (rate(tasklane_http_requests_total[$__rate_interval]))", "{{route}}")),
    prom("Errors (5xx), by route", "reqps",
         ("sum by (route, status) (rate(tasklane_http_requests_total{status=~\"5..\"}[$__rate_interval]))",
          "{{route}} {{status}}")),
    prom("Error ratio", "percentunit",
         ("sum(rate(tasklane_http_requests_total{status=~\"5..\"}[$__rate_interval])) / "
          "sum(rate(tasklane_http_requests_total[$__rate_interval]))", "5xx")),
    prom("Latency, by route", "s", *quantiles("tasklane_http_request_duration_seconds", "route", "{{route}}")),
    prom("In flight", "short", ("sum(tasklane_http_requests_in_flight)", "requests")),
    prom("Database pool", "short", ("sum by (state) (tasklane_db_pool_connections)", "{{state}}")),
]

TASKS = [
    sql("Tasks by status", "SELECT status, COUNT(*) AS tasks FROM tasks GROUP BY status ORDER BY status",
        kind="piechart"),
    sql("Tasks by priority",
        "SELECT CASE priority WHEN 4 THEN 'urgent' WHEN 3 THEN 'high' WHEN 2 THEN 'medium' ELSE 'low' END "
        "AS priority, COUNT(*) AS tasks FROM tasks GROUP BY priority ORDER BY priority DESC", kind="piechart"),
    sql("Open and overdue",
        "SELECT SUM(status <> 'done') AS open, "
        "SUM(status <> 'done' AND deadline IS NOT NULL AND deadline < UTC_TIMESTAMP()) AS overdue FROM tasks",
        kind="stat"),
    sql("Created and completed per week",
        "SELECT week AS time, SUM(created) AS created, SUM(completed) AS completed FROM ("
        "SELECT DATE(created_at - INTERVAL WEEKDAY(created_at) DAY) AS week, 1 AS created, 0 AS completed "
        "FROM tasks WHERE $__timeFilter(created_at) UNION ALL "
        "SELECT DATE(completed_at - INTERVAL WEEKDAY(completed_at) DAY), 0, 1 FROM tasks "
        "WHERE completed_at IS NOT NULL AND $__timeFilter(completed_at)) AS weeks GROUP BY week ORDER BY week",
        kind="barchart", fmt="time_series"),
    sql("Completion rate per member and month",
        "SELECT DATE_FORMAT(t.created_at, '%Y-%m') AS month, u.display_name AS member, COUNT(*) AS tasks, "
        "ROUND(100 * SUM(t.status = 'done') / COUNT(*), 1) AS completed_percent "
        "FROM tasks t JOIN users u ON u.id = t.pic_id WHERE $__timeFilter(t.created_at) "
        "GROUP BY month, member ORDER BY month DESC, member", unit="none"),
    sql("Notifications per day",
        "SELECT DATE(created_at) AS time, channel, COUNT(*) AS notifications FROM notifications "
        "WHERE $__timeFilter(created_at) GROUP BY DATE(created_at), channel ORDER BY time",
        kind="timeseries", fmt="time_series"),
]

DASHBOARDS = [
    ("tasklane-jobs", "tasklane · job platform", JOBS),
    ("tasklane-api", "tasklane · API", API),
    ("tasklane-tasks", "tasklane · tasks and people", TASKS),
]


def dashboard(uid, title, panels):
    laid_out = []
    for i, panel in enumerate(panels):
        # Two panels a row, each half the width and eight units high.
        laid_out.append({"id": i + 1, "gridPos": {"x": 12 * (i % 2), "y": 8 * (i // 2), "w": 12, "h": 8}, **panel})
    return {"uid": uid, "title": title, "tags": ["tasklane"], "schemaVersion": 39, "version": 1,
            "editable": False, "time": {"from": "now-7d" if uid == "tasklane-tasks" else "now-6h", "to": "now"},
            "refresh": "" if uid == "tasklane-tasks" else "30s", "timezone": "utc", "panels": laid_out,
            "templating": {"list": []}, "annotations": {"list": []}}


def main(argv):
    check = "--check" in argv
    stale = []
    for uid, title, panels in DASHBOARDS:
        path = HERE / "dashboards" / f"{uid}.json"
        text = json.dumps(dashboard(uid, title, panels), indent=2, ensure_ascii=False) + "\n"
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        sys.exit("grafana/generate.py: out of date (run it and commit): " + ", ".join(stale))


if __name__ == "__main__":
    main(sys.argv[1:])
