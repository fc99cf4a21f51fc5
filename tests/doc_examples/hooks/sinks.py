"""A sink plugin: the whole database in one JSON file (``--db jsonfile:///path/db.json``).

Each commit writes a new file and renames it over the old one, so a batch is all or nothing:
a run killed at any moment leaves the last committed file. Every commit rewrites the whole
file: a sink for small volumes, and a complete example of the interface (POSIX: it locks
with ``fcntl``).
"""

import copy
import fcntl
import json
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import hookline
from hookline.sinks import Sink, SinkBatch, SinkReader, StoredDeadLetter

EMPTY: dict[str, Any] = {"events": {}, "dead_letters": [], "last_letter": 0, "tables": {},
                         "checkpoints": {}, "stage_state": {}, "runs": {}}
KEYED = ("checkpoints", "stage_state", "runs")


def path_of(url: str) -> str:
    return url.removeprefix("jsonfile://")


def load(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return copy.deepcopy(EMPTY)


def combined(old: Any, new: Any, how: str) -> Any:
    if old is None or how == "last":
        return new
    if new is None:
        return old
    return {"sum": old + new, "min": min(old, new), "max": max(old, new)}[how]


class JsonFileReader(SinkReader):
    def __init__(self, path: str) -> None:
        self.path = path

    def load_state(self, stages: Iterable[str]) -> dict[str, dict[str, Any]]:
        state: dict[str, dict[str, Any]] = {stage: {} for stage in stages}
        for row in load(self.path)["stage_state"].values():
            if row["stage"] in state:
                state[row["stage"]][row["key"]] = json.loads(row["value"])
        return state

    def seen_ids(self, event_ids: Sequence[str]) -> set[str]:
        data = load(self.path)
        letters = {letter["event_id"] for letter in data["dead_letters"]}
        return {i for i in event_ids if i in data["events"] or i in letters}

    def close(self) -> None:
        pass


class JsonFileSink(JsonFileReader, Sink):
    database_errors = (OSError, ValueError)

    def __init__(self, url: str, event_class: type[hookline.Event], *,
                 run_id: str = "") -> None:
        Sink.__init__(self, url, event_class, run_id=run_id)
        JsonFileReader.__init__(self, path_of(url))
        self.data = load(self.path)  # this run is the one writer: read once
        self.lock: Any = None

    @classmethod
    def reader(cls, url: str) -> SinkReader:
        return JsonFileReader(path_of(url))

    def check_writable(self) -> None:
        probe = self.path + ".probe"
        with open(probe, "w", encoding="utf-8"):
            pass
        os.remove(probe)

    def lock_writer(self, on_wait: Any = None) -> None:
        if self.lock is None:
            self.lock = open(self.path + ".lock", "a")  # noqa: SIM115 - closed by close()
            try:
                fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait(f"another run is writing into {self.path}; waiting for it")
                fcntl.flock(self.lock, fcntl.LOCK_EX)
            self.data = load(self.path)  # what the run before this one committed

    def checkpoint(self, key: str) -> tuple[int, int]:
        row = self.data["checkpoints"].get(key)
        return (row["offset"], row["line"]) if row else (0, 0)

    def load_state(self, stages: Iterable[str]) -> dict[str, dict[str, Any]]:
        state: dict[str, dict[str, Any]] = {stage: {} for stage in stages}
        for row in self.data["stage_state"].values():
            if row["stage"] in state:
                state[row["stage"]][row["key"]] = json.loads(row["value"])
        return state

    def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        return {i for i in event_ids if i in self.data["events"]}

    def seen_ids(self, event_ids: Sequence[str]) -> set[str]:
        letters = {letter["event_id"] for letter in self.data["dead_letters"]}
        return {i for i in event_ids if i in self.data["events"] or i in letters}

    def dead_letters(self, after_id: int, limit: int) -> list[StoredDeadLetter]:
        return [StoredDeadLetter(d["id"], d["payload"], d["line"], d["source"], d["replays"])
                for d in self.data["dead_letters"] if d["id"] > after_id][:limit]

    def last_dead_letter_id(self) -> int:
        return max((d["id"] for d in self.data["dead_letters"]), default=0)

    def commit(self, batch: SinkBatch) -> None:
        data, now = copy.deepcopy(self.data), time.time()  # changed here, then saved whole
        replayed = set(batch.replayed)
        data["dead_letters"] = [d for d in data["dead_letters"] if d["id"] not in replayed]
        names = self.rows.names
        kinds: dict[str, Any] = {}
        for row in batch.rows:
            event = dict(zip(names, row))
            data["events"][event["event_id"]] = event
            if "kind" in event:
                amount, score = event.get("amount") or 0, event.get("score")
                kinds.setdefault(event["kind"], []).append((amount, score))
        by_kind = {kind: (kind, len(values), sum(a for a, _ in values),
                          min(a for a, _ in values), max(a for a, _ in values),
                          sum(s for _, s in values if s is not None),
                          sum(1 for _, s in values if s is not None))
                   for kind, values in kinds.items()}
        combine = {"count": "sum", "amount_sum": "sum", "amount_min": "min",
                   "amount_max": "max", "score_sum": "sum", "score_count": "sum"}
        self.add(data, "agg_by_kind", ("kind", *combine), combine, by_kind.values())
        for aggregation in batch.aggregations:
            self.add(data, aggregation.table, aggregation.columns,
                     getattr(aggregation, "combine", None) or {}, aggregation.rows())
        for letter in batch.dead_letters:
            data["last_letter"] += 1
            data["dead_letters"].append({**vars(letter), "id": data["last_letter"],
                                         "run_id": self.run_id, "created_at": now})
        for stage, key, text in batch.state:
            if text is None:
                data["stage_state"].pop(f"{stage}\n{key}", None)
            else:
                data["stage_state"][f"{stage}\n{key}"] = {"stage": stage, "key": key,
                                                          "value": text}
        checkpoints = [(key, size, 0) for key, size in batch.outputs]
        if batch.checkpoint is not None:
            checkpoints.append(tuple(batch.checkpoint))
        for key, offset, line in checkpoints:
            data["checkpoints"][key] = {"source": key, "offset": offset, "line": line,
                                        "updated_at": now}
        self.save(data)

    def add(self, data: dict[str, Any], table: str, columns: Sequence[str],
            combine: dict[str, str], rows: Iterable[Sequence[Any]]) -> None:
        stored = data["tables"].setdefault(table, {})
        for row in rows:
            new = dict(zip(columns, row))
            old = stored.setdefault(str(new[columns[0]]), {columns[0]: new[columns[0]]})
            for column in columns[1:]:
                old[column] = combined(old.get(column), new[column], combine.get(column, "sum"))

    def save(self, data: dict[str, Any]) -> None:
        new = self.path + ".new"
        with open(new, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(new, self.path)  # the commit: the old file or the new, never half of one
        self.data = data

    def record_run(self, started_at: float, report: Any) -> None:
        data = copy.deepcopy(self.data)
        data["runs"][self.run_id] = {"run_id": self.run_id, "started_at": started_at,
                                     "finished_at": time.time(), "report": json.dumps(report)}
        self.save(data)

    def read_table(self, name: str) -> list[dict[str, Any]]:
        if name == "events":
            return [{column: row.get(column) for column in {*self.rows.names, *row}}
                    for row in self.data["events"].values()]
        if name == "dead_letters":
            return list(self.data["dead_letters"])
        if name in KEYED:
            return list(self.data[name].values())
        return list(self.data["tables"].get(name, {}).values())

    def close(self) -> None:
        if self.lock is not None:
            self.lock.close()  # closing the file releases the lock
            self.lock = None


# --8<-- [start:hook]
@hookline.hookimpl
def hookline_sinks() -> dict[str, Any]:
    return {"jsonfile": JsonFileSink}
# --8<-- [end:hook]
