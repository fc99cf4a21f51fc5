"""The run report (issue 18): exact call counts in pipeline order, flag lines with the share of
users, sections formatted for people, the whole report as JSON, a stored report that stays
small whatever the input, and how each run ended (status, exit status)."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path
from typing import Any

import pytest
from _cli_site import Site
from _db import rows

import hookline
from hookline._report import MAX_REASONS, OTHER_REASONS, Report
from hookline.config import Config
from hookline.errors import RunAborted
from hookline.flags import bucket

#: How many times the gated stage really ran (reset by each test that uses it).
BOOSTED: list[str] = []


class Gate(hookline.Stage, phase="validate", name="z_gate"):
    def process(self, event: hookline.Event) -> None:
        if event.amount > 100:
            raise hookline.Reject(f"amount {event.amount} over 100 at {event.ts} for "
                                  f"{event.event_id}")


class Filter(hookline.Stage, phase="enrich", name="m_filter"):
    def process(self, event: hookline.Event) -> None:
        if event.kind == "view":
            raise hookline.Drop()


class Boost(hookline.Stage, phase="score", name="a_boost", flag="shop.boost"):
    def process(self, event: hookline.Event) -> None:
        BOOSTED.append(event.event_id)


class Tag(hookline.Stage, phase="score", name="b_tag"):
    def process(self, event: hookline.Event) -> None:
        event.tags = [*event.tags, "seen"]


@hookline.hookimpl
def hookline_flags() -> list[dict[str, Any]]:
    return [{"name": "shop.boost", "rollout": 0.25, "description": "boost a quarter"}]


def _shop() -> list[tuple[str, Any]]:
    return [("shop", Gate), ("shop", Filter), ("shop", Boost), ("shop", Tag),
            ("shop", types.SimpleNamespace(hookline_flags=hookline_flags))]


def _events(path: Path, count: int, *, users: int = 300) -> Path:
    kinds = ("buy", "view", "click", "buy", "refund")
    path.write_text("".join(
        json.dumps({"event_id": f"e{i:05d}", "user_id": f"u{(i * 7919) % users}",
                    "kind": kinds[i % 5], "ts": 1_000 + i,
                    "amount": 150.0 if i % 8 == 0 else 20.0 + i % 13}) + "\n"
        for i in range(count)) + "{broken\n" + json.dumps({"event_id": "x"}) + "\n")
    return path


def _run(tmp_path: Path, count: int = 2000, **config: Any) -> hookline.Report:
    BOOSTED.clear()
    settings = Config(batch_size=300, **config)
    return hookline.run([str(_events(tmp_path / "in.jsonl", count))],
                        db=str(tmp_path / "out.db"), config=settings,
                        pipeline=hookline.Pipeline.from_plugins(_shop(), settings))


def test_calls_are_exact_and_the_stages_in_pipeline_order(tmp_path: Path) -> None:
    report = _run(tmp_path)
    stats = report.stage_stats
    # validate, enrich, then score (its stages by name): not alphabetical
    assert list(stats) == ["shop.z_gate", "shop.m_filter", "shop.a_boost", "shop.b_tag"]
    rejected = sum(1 for i in range(2000) if i % 8 == 0)
    reached_enrich = 2000 - rejected
    dropped = sum(1 for i in range(2000) if i % 8 and i % 5 == 1)
    assert [stats[name]["calls"] for name in stats] == [
        2000, reached_enrich, len(BOOSTED), reached_enrich - dropped]
    assert 0 < len(BOOSTED) < reached_enrich - dropped
    assert all(s["calls_exact"] for s in stats.values())
    assert (stats["shop.z_gate"]["rejected"], stats["shop.m_filter"]["dropped"]) == (
        rejected, dropped)
    text = report.format()
    assert "~" not in text.partition("stages, in pipeline order:")[2].partition("top ")[0]
    assert re.search(rf"^    shop\.z_gate +{2000:,} ", text, re.M)
    # the stage table's rows come in the order of the stats, dead letters by stage too
    assert text.index("shop.z_gate") < text.index("shop.m_filter") < text.index("shop.b_tag")
    by_stage = text.partition("dead letters by stage:")[2].partition("stages,")[0]
    assert by_stage.index("parse") < by_stage.index("schema") < by_stage.index("shop.z_gate")


def test_a_rollout_line_gives_the_share_of_users_and_of_events(tmp_path: Path) -> None:
    report = _run(tmp_path)
    [flag] = report.flags
    accepted_users = {user for (user,) in rows(tmp_path / "out.db",
                                                "SELECT DISTINCT user_id FROM events")}
    on = sum(bucket("shop.boost", user) < 0.25 for user in accepted_users)
    assert (flag["name"], flag["value"], flag["users"], flag["users_on"]) == (
        "shop.boost", 0.25, len(accepted_users), on)
    assert flag["on"] == len(BOOSTED)
    line = next(line for line in report.format().splitlines() if "shop.boost" in line)
    assert (f"on for {100 * on / len(accepted_users):.1f}% of users ({on:,} of "
            f"{len(accepted_users):,}) and {100 * len(BOOSTED) / flag['evaluations']:.1f}% "
            f"of events ({len(BOOSTED):,} of {flag['evaluations']:,}); rollout 25% by "
            "user_id, from default") in line


def test_sections_are_formatted_not_printed_as_dicts() -> None:
    report = Report(run_id="r1", read=3, accepted=3, duration_s=0.5, sections={
        "timed": {"shop.a": {"calls": 12345, "p50_us": 0.123456789, "mean_us": 1234.5678},
                  "shop.b": {"calls": 7, "p50_us": 3.0, "mean_us": 0.5}},
        "quality": {"worst": {"stage": "shop.a", "share": 0.3333333333}, "ok": True,
                    "stages": ["a", "b"], "ratio": 0.0123456, "none": None},
    })
    text = report.format()
    assert "{" not in text and "[" not in text.replace("[timed]", "").replace("[quality]", "")
    assert not re.search(r"\d\.\d{5,}", text), text  # no 16-digit floats: 3 significant
    timed = text.partition("[timed]")[2].splitlines()[1:4]
    assert re.split(r"\s+", timed[0].strip()) == ["calls", "p50_us", "mean_us"]
    assert re.split(r"\s+", timed[1].strip()) == ["shop.a", "12,345", "0.123", "1,235"]
    assert "worst: stage shop.a, share 0.333" in text
    assert "ok: yes" in text and "stages: a, b" in text and "ratio: 0.0123" in text


def test_the_report_reads_back_as_it_was_printed(tmp_path: Path) -> None:
    report = _run(tmp_path, count=500)
    report.duration_s = round(report.duration_s, 3)  # as stored
    again = Report.from_dict(json.loads(json.dumps(report.as_dict())))
    assert again.format() == report.format()
    assert again.balanced and again.read == 502


def test_the_stored_report_stays_small_with_a_reason_per_event(tmp_path: Path) -> None:
    report = _run(tmp_path, count=20_000)  # 2,500 refusals, each with its own reason
    assert len(report.reasons) == MAX_REASONS + 1
    assert report.reasons[OTHER_REASONS] > 2000
    assert not any(re.search(r"\be\d{5}\b", reason) for reason in report.reasons)  # no id
    assert "amount 150.0 over 100 at 1000 for <event_id>" in report.reasons
    assert sum(report.reasons.values()) == report.dead_lettered
    [(size,)] = rows(tmp_path / "out.db", "SELECT length(report) FROM runs")
    assert size < 10_000


def test_how_a_run_ended_is_stored(tmp_path: Path) -> None:
    over = _run(tmp_path, count=400, max_dead_letter_ratio=0.01)
    assert (over.status.startswith("over the dead-letter limit"), over.exit_status) == (True, 3)

    class Broken(hookline.Stage, phase="validate", name="broken"):
        def process(self, event: hookline.Event) -> None:
            if event.event_id == "e00250":
                raise KeyError("boom")

    settings = Config(batch_size=100, error_policy={"team.broken": "fail-run"})
    with pytest.raises(RunAborted):
        hookline.run([str(tmp_path / "in.jsonl")], db=str(tmp_path / "aborted.db"),
                     config=settings,
                     pipeline=hookline.Pipeline.from_plugins([("team", Broken)], settings))
    [(text,)] = rows(tmp_path / "aborted.db", "SELECT report FROM runs")
    stored = json.loads(text)
    assert (stored["status"], stored["exit_status"], stored["read"]) == (
        "aborted by team.broken", 4, 200)
    [(text,)] = rows(tmp_path / "out.db", "SELECT report FROM runs")
    assert json.loads(text)["exit_status"] == 3


def test_format_json_prints_the_whole_report(site: Site) -> None:
    site.monkeypatch.setenv("HOOKLINE_DISABLE_PLUGIN_AUTOLOAD", "1")  # no plugin: all pass
    events = site.events(200)
    result = site.hookline("run", events, "--db", "out.db", "--format", "json",
                           "--max-dead-letter-ratio", "0.5")
    assert result.code == 0, result.err
    report = json.loads(result.out)  # nothing else on stdout
    assert (report["read"], report["accepted"], report["duplicates"]) == (200, 200, 0)
    assert {"status", "exit_status", "inputs", "stages", "flags", "sections", "plugins",
            "dead_letter_reasons", "started_at", "duration_s", "balanced"} <= set(report)
    assert report["inputs"] == [{"name": str(events), "from_line": 0, "to_line": 200,
                                 "read": 200}]
    assert (report["status"], report["exit_status"]) == ("completed", 0)
