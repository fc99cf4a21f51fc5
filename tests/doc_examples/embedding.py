"""Run hookline from Python: the same run as `hookline run events.jsonl --db hookline.db`."""

import json

import hookline

events = [
    {"event_id": "e1", "user_id": "u1", "kind": "purchase", "ts": 1767225600000, "amount": 25},
    {"event_id": "e2", "user_id": "u2", "kind": "view", "ts": 1767225601000},
    {"event_id": "e3", "user_id": "u2", "kind": "view", "ts": -1},
]
with open("events.jsonl", "w", encoding="utf-8") as out:
    out.writelines(json.dumps(event) + "\n" for event in events)

report = hookline.run(["events.jsonl"], db="hookline.db")
print(report.read, report.accepted, report.dropped, report.dead_lettered)
