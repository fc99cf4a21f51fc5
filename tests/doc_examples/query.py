"""Read what a run stored: aggregates, and why events were dead-lettered."""

import sqlite3

db = sqlite3.connect("hookline.db")

print("kind          events       amount")
for kind, count, amount in db.execute(
    "SELECT kind, count, round(amount_sum, 2) FROM agg_by_kind ORDER BY count DESC"
):
    print(f"{kind:<12} {count:>7} {amount:>12}")

print("dead letters by stage")
for stage, count in db.execute(
    "SELECT stage, count(*) FROM dead_letters GROUP BY stage ORDER BY 2 DESC"
):
    print(f"{stage:<12} {count:>7}")
