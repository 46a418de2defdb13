"""``perfstack cdn purge`` against the fake Cloudflare API (tests/fake_cloudflare.py), through its entry point.

Every run goes through ``purge.main(argv)`` with the environment set by monkeypatch (one runs as a
real process), and every run's stdout and stderr are checked for the API token. Waiting is made
instant with a :class:`VirtualClock` wherever the wait would be long (backoff, ``--wait-for``
polls); the 429 tests use the real clock, with a fake that asks for waits of about 50 ms.
"""

from __future__ import annotations

import email.utils
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fake_cloudflare import DEFAULT_ZONE, FakeCloudflare, fake_cloudflare  # noqa: F401

from perfstack.cdn import manifest, purge
from perfstack.cdn.api import parse_retry_after
from perfstack.cdn.limits import PLANS, SystemClock, TokenBucket, VirtualClock, estimate_seconds

ROOT = Path(__file__).resolve().parents[1]


def urls(n: int, host: str = "https://www.example.com") -> list[str]:
    return [f"{host}/assets/file-{i:04d}.js" for i in range(n)]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.out)

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class RecordingClock(SystemClock):
    """The real clock, remembering every sleep."""

    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        super().sleep(seconds)


@pytest.fixture
def fake(fake_cloudflare: FakeCloudflare, monkeypatch: pytest.MonkeyPatch) -> FakeCloudflare:  # noqa: F811
    """The fake API, with the command's environment pointing at it."""
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", fake_cloudflare.token)
    monkeypatch.setenv("CLOUDFLARE_ZONE_ID", fake_cloudflare.zone_id)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", fake_cloudflare.base_url)
    for name in ("CLOUDFLARE_EMAIL", "CLOUDFLARE_API_KEY", "CLOUDFLARE_API_USER_SERVICE_KEY", "PERFSTACK_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    return fake_cloudflare


@pytest.fixture
def cli(fake: FakeCloudflare, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``perfstack cdn purge ARGV`` in-process; fails the test if the token shows up in any output."""

    def run(*argv: str, clock: Any = None, stdin: io.StringIO | None = None, stderr: Any = None) -> Result:
        code = purge.main(list(argv), clock=clock or VirtualClock(), stdin=stdin, stderr=stderr)
        captured = capsys.readouterr()
        err = captured.err + (stderr.getvalue() if stderr is not None else "")
        token = os.environ.get("CLOUDFLARE_API_TOKEN") or fake.token
        for secret in {token, fake.token}:
            assert secret not in captured.out and secret not in err, "the API token leaked into the output"
        return Result(code, captured.out, err)

    return run


class Origin:
    """A tiny origin web server: ``respond(path, n)`` gives (status, headers, body) for the n-th request."""

    def __init__(self, respond: Callable[[str, int], tuple[int, dict[str, str], str]]) -> None:
        self.respond = respond
        self.paths: list[str] = []
        self.times: list[float] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                origin.paths.append(self.path)
                origin.times.append(time.monotonic())
                status, headers, body = origin.respond(self.path, len(origin.paths))
                payload = body.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def origin_factory():
    made: list[Origin] = []

    def make(respond: Callable[[str, int], tuple[int, dict[str, str], str]]) -> Origin:
        made.append(Origin(respond))
        return made[-1]

    yield make
    for o in made:
        o.close()


def not_purged_section(out: str) -> list[str]:
    """The URLs listed under "NOT purged" in the summary."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("NOT purged"))
    return [line.strip() for line in lines[start + 1 :] if line.startswith("    ")]


# --- Batching and pacing ----------------------------------------------------------------------


def test_thousand_urls_purged_once_each_in_batches_of_30(cli, fake, tmp_path):
    listed = urls(1000)
    source = tmp_path / "urls.txt"
    source.write_text("# one URL per line\n" + "\n".join(listed) + "\n\n")
    clock = VirtualClock()
    r = cli("--files-from", str(source), clock=clock)

    assert r.code == 0, r.text
    assert fake.purge_counts() == {u: 1 for u in listed}
    assert len(fake.requests) == 34 and fake.max_request_size() == 30
    assert set(fake.statuses()) == {200}
    # Free plan: a bucket of 800 URLs refilled at 800/s, so the last 200 URLs waited 0.25 s.
    assert sum(clock.sleeps) == pytest.approx(0.25, abs=0.01)
    assert "purged 1000 of 1000 URLs" in r.out and "result: OK" in r.out
    assert "batch 34/34: purged 10 URLs" in r.err  # plain progress lines when stderr is not a terminal


def test_batch_size_and_plan_limits(cli, fake):
    fake.max_files = 100
    r = cli("--files", *urls(250), "--batch-size", "100", "--plan", "pro")
    assert r.code == 0, r.text
    assert [q.size for q in fake.requests] == [100, 100, 50]

    refused = cli("--files", *urls(5), "--batch-size", "101", "--plan", "business")
    assert refused.code == 2
    assert "--batch-size 101" in refused.err and "100 URLs" in refused.err and "--plan enterprise" in refused.err
    assert cli("--files", *urls(5), "--batch-size", "501", "--plan", "enterprise").code == 2
    assert cli("--tags", "a", "--batch-size", "101", "--plan", "enterprise").code == 2  # 100 tags on every plan
    assert len(fake.requests) == 3


def test_token_bucket_and_estimate():
    clock = VirtualClock()
    bucket = TokenBucket(rate=5 / 60, capacity=25, clock=clock)  # Free plan, non-URL purges
    for _ in range(25):
        assert bucket.acquire() == 0
    assert bucket.acquire() == pytest.approx(12.0)
    assert estimate_seconds(PLANS["free"], "tags", [30] * 34) == pytest.approx(9 * 12.0)
    assert estimate_seconds(PLANS["enterprise"], "files", [500] * 10) == pytest.approx(2 / 3, abs=1e-6)
    with pytest.raises(ValueError):
        bucket.acquire(26)


# --- 429, 5xx, retries ------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [("Retry-After",), ("retry-after-ms",)])
def test_429_bursts_wait_what_retry_after_says(cli, fake, headers):
    fake.rate_limit(rate=20, burst=4, headers=headers)  # 4 at once, then one per 50 ms
    clock = RecordingClock()
    listed = urls(300)
    r = cli("--files", *listed, "--json", clock=clock)

    assert r.code == 0, r.text
    assert fake.purge_counts() == {u: 1 for u in listed}
    limited = [q for q in fake.requests if q.status == 429]
    assert limited, "the burst should have met the fake's rate limit"
    # Each 429 was followed by a sleep of exactly what the header asked (ms precision), then a retry.
    asked = [round(float(q.retry_after), 3) for q in limited]
    assert [round(s, 3) for s in clock.sleeps] == asked  # 300 URLs never wait for the plan's own bucket
    for q in limited:
        later = [n for n in fake.requests if n.time > q.time]
        assert later and later[0].time - q.time >= float(q.retry_after) - 0.005
    doc = r.json()
    assert doc["retries"] == len(limited) and doc["requests"] == len(fake.requests)


def test_5xx_retried_with_backoff_then_success(cli, fake):
    fake.fail_next(3, 500)
    fake.fail_next(1, 502, html=True)  # Cloudflare's edge answers 502 with an HTML page
    clock = VirtualClock()
    listed = urls(60)
    r = cli("--files", *listed, clock=clock)

    assert r.code == 0, r.text
    assert fake.statuses() == [500, 500, 500, 502, 200, 200]
    assert fake.purge_counts() == {u: 1 for u in listed}
    # Attempt n waits between half and all of 0.5 * 2**(n-1) seconds.
    assert len(clock.sleeps) == 4
    for n, slept in enumerate(clock.sleeps, start=1):
        ceiling = 0.5 * 2 ** (n - 1)
        assert ceiling / 2 <= slept <= ceiling
    assert "attempt 4 failed (HTTP 502: <html>" in r.err
    assert "4 retries" in r.out


def test_exhausted_retries_exit_1_and_list_what_was_not_purged(cli, fake):
    fake.fail_next(3, 503)
    listed = urls(90)
    r = cli("--files", *listed, "--max-retries", "2")

    assert r.code == 1
    assert fake.purged_items() == listed[30:]
    assert not_purged_section(r.out) == listed[:30]
    assert "30 URLs: HTTP 503: injected failure 503 [code 10001] after 3 attempts" in r.out
    assert "purged 60 of 90 URLs" in r.out and "result: FAILED" in r.out

    as_json = cli("--files", *listed, "--max-retries", "0", "--json")  # the fake is healthy again
    assert as_json.code == 0 and as_json.json()["failed"] == []


def test_api_down_stops_after_three_batches_and_reports_the_rest_unsent(cli, fake):
    fake.fail_always(500)
    listed = urls(150)
    r = cli("--files", *listed, "--max-retries", "1", "--json")

    assert r.code == 1
    assert len(fake.requests) == 6  # 3 batches x 2 attempts; batches 4 and 5 never sent
    doc = r.json()
    assert doc["ok"] is False and doc["purged"] == []
    assert [f["item"] for f in doc["failed"]] == listed
    assert doc["batches"] == {"total": 5, "purged": 0, "failed": 3, "not_sent": 2}
    assert doc["failed"][0]["error"]["status"] == 500 and doc["failed"][0]["attempts"] == 2
    assert doc["failed"][-1]["error"] is None and "not sent" in doc["failed"][-1]["reason"]
    assert "batches in a row" in doc["stopped"]


def test_json_matches_the_fake_log(cli, fake):
    fake.fail_next(2, 500)
    fake.fail_next(1, 400, message="files: bad request")  # then batch 1 is refused for good
    listed = urls(100)
    r = cli("--files", *listed, "--json")

    assert r.code == 1
    doc = r.json()
    assert doc["purged"] == fake.purged_items()
    assert doc["requests"] == len(fake.requests) == 6 and doc["retries"] == 2
    assert [f["item"] for f in doc["failed"]] == listed[:30]
    assert doc["failed"][0]["attempts"] == 3
    assert doc["failed"][0]["error"] == {
        "kind": "rejected",
        "status": 400,
        "errors": [{"code": 10001, "message": "files: bad request"}],
        "message": "HTTP 400: files: bad request [code 10001]",
    }
    assert len(doc["purge_ids"]) == 3 and doc["exit_code"] == 1
    assert "purged 70 of 100 URLs" in r.err  # with --json the summary moves to stderr


def test_200_that_says_success_false_is_not_success(cli, fake):
    # The SDK returns None for such an answer instead of raising; the command reads the envelope itself.
    fake.fail_next(1, 200, message="purge not accepted")
    r = cli("--files", *urls(40), "--json")
    assert r.code == 1
    doc = r.json()
    assert doc["batches"]["failed"] == 1 and len(doc["purged"]) == 10
    assert doc["failed"][0]["error"]["message"] == "HTTP 200: purge not accepted [code 10001]"


def test_retry_after_forms():
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": "0.05"}) == 0.05
    when = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after({"Retry-After": when}, now=1_000_000) == pytest.approx(30)
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


# --- Refusals ---------------------------------------------------------------------------------


def test_403_names_the_missing_permission(cli, fake, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "a-token-without-cache-purge")
    r = cli("--files", *urls(40))
    assert r.code == 1
    assert len(fake.requests) == 1 and fake.purged == []
    error = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    assert "HTTP 403" in error[0] and "Cache Purge" in error[0] and "CLOUDFLARE_API_TOKEN" in error[0]
    assert len(not_purged_section(r.out)) == 40
    assert "a-token-without-cache-purge" not in r.text


def test_unknown_zone_is_an_api_failure_naming_the_zone_flag(cli, fake, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_ZONE_ID", "f" * 32)
    r = cli("--files", *urls(3))
    assert r.code == 1
    assert "does not know zone ffff" in r.err and "--zone-id / CLOUDFLARE_ZONE_ID" in r.err


@pytest.mark.parametrize(
    ("argv", "unset", "expected"),
    [
        (["--files", "https://www.example.com/a.js"], "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_TOKEN is not set"),
        (["--files", "https://www.example.com/a.js"], "CLOUDFLARE_ZONE_ID", "--zone-id ID or set CLOUDFLARE_ZONE_ID"),
        (["--files", "https://www.example.com/a.js", "--zone-id", "example.com"], None, "not a Cloudflare zone id"),
        (["--files"], None, "--files: no URL given"),
        (["--tags"], None, "--tags: no tag given"),
        ([], None, "nothing to purge: give one of --files"),
        (["--files", "www.example.com/a.js"], None, "is not an absolute http(s) URL with a host"),
        (["--files", "ftp://www.example.com/a.js"], None, "is not an absolute http(s) URL"),
        (["--files", "https:///a.js"], None, "is not an absolute http(s) URL"),
        (["--prefixes", "https://www.example.com/static/"], None, "without scheme (expected e.g. www.example"),
        (["--hosts", "www.example.com/x"], None, "is not a hostname"),
        (["--files", "https://a.example/x", "--wait-for", "https://a.example/v"], None, "--wait-for needs --expect"),
        (["--changed-from", "old.json", "--changed-to", "new.json"], None, "needs --base-url"),
        (["--files", "https://a.example/x", "--api-base-url", "localhost:8787"], None, "--api-base-url"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(cli, fake, monkeypatch, argv, unset, expected):
    if unset:
        monkeypatch.delenv(unset)
    r = cli(*argv)
    assert r.code == 2
    assert r.err.startswith("error: ") and r.err.count("\n") == 1, r.err
    assert expected in r.err
    assert fake.requests == []


def test_usage_error_with_json_still_prints_a_json_document(cli, fake, monkeypatch):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    r = cli("--files", *urls(2), "--json")
    assert r.code == 2
    assert r.json() == {
        "ok": False,
        "exit_code": 2,
        "error": r.err.removeprefix("error: ").strip(),
        "purged": [],
        "requests": 0,
    }


def test_empty_file_and_stdin(cli, fake, tmp_path):
    empty = tmp_path / "none.txt"
    empty.write_text("# nothing changed\n")
    r = cli("--files-from", str(empty))
    assert r.code == 2 and f"--files-from {empty}: no URL given" in r.err

    r = cli("--files-from", "-", stdin=io.StringIO("https://www.example.com/a.js\nhttps://www.example.com/a.js\n"))
    assert r.code == 0 and fake.purged_items() == ["https://www.example.com/a.js"]
    assert "1 duplicate item(s) dropped" in r.out


def test_argparse_conflicts_exit_2(cli, fake):
    r = cli("--files", "https://www.example.com/a.js", "--tags", "x")
    assert r.code == 2 and "not allowed with argument" in r.err
    assert fake.requests == []


def test_stray_global_key_in_the_environment_does_not_replace_the_token(cli, fake, monkeypatch):
    # SDK 5.9 would send X-Auth-Email instead of the bearer token if these were left in place.
    monkeypatch.setenv("CLOUDFLARE_EMAIL", "someone@example.com")
    monkeypatch.setenv("CLOUDFLARE_API_KEY", "legacy-global-key")
    assert cli("--files", *urls(2)).code == 0
    assert len(fake.purged_items()) == 2


def test_token_is_redacted_even_when_an_error_quotes_it(cli, fake):
    fake.fail_next(1, 400, message=f"invalid header: Authorization: Bearer {fake.token}")
    r = cli("--files", *urls(3), "--json")  # the cli fixture asserts the token is absent
    assert r.code == 1
    assert "Bearer ***" in r.err and "Bearer ***" in r.out


# --- Dry run and safety -------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_sends_nothing(cli, fake, monkeypatch):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")  # a dry run needs no secret (pull requests)
    r = cli("--tags", *[f"t{i}" for i in range(1000)], "--dry-run")
    assert r.code == 0, r.text
    assert fake.requests == []
    assert "with 34 request(s)" in r.out
    assert "5 requests/minute, bursts of 25: at least 108.0s" in r.out
    assert "request 34: 10 tags: t990 … t999" in r.out
    assert "CLOUDFLARE_API_TOKEN is not set" in r.out

    doc = cli("--files", *urls(61), "--dry-run", "--json").json()
    assert doc["dry_run"] is True and doc["requests"] == 3 and [len(b) for b in doc["batches"]] == [30, 30, 1]
    assert fake.requests == []


def test_everything_on_a_shared_zone_needs_force(cli, fake):
    r = cli("--everything", "--zone-shared", "--environment", "prod")
    assert r.code == 2 and fake.requests == []
    assert "refusing --everything" in r.err and "this deploy is prod" in r.err and "--force" in r.err

    r = cli("--everything", "--zone-shared", "--environment", "prod", "--force")
    assert r.code == 0, r.text
    assert [(q.mode, q.status) for q in fake.requests] == [("purge_everything", 200)]
    assert "warning: --force" in r.err and "purged everything" in r.out

    assert cli("--everything").code == 0  # a zone not marked shared


def test_stack_settings_give_zone_plan_and_who_shares_the_zone(cli, fake, monkeypatch, tmp_path):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    cdn = f"  perfstack:cdn:\n    enabled: true\n    zoneId: {DEFAULT_ZONE}\n    sharedZone: true\n    plan: pro\n"
    for name in ("prod", "staging"):
        (stacks / f"Pulumi.{name}.yaml").write_text("config:\n" + cdn)
    (stacks / "Pulumi.dev.yaml").write_text("config:\n  perfstack:cdn:\n    enabled: false\n")
    monkeypatch.setenv("PERFSTACK_ROOT", str(tmp_path))
    monkeypatch.delenv("CLOUDFLARE_ZONE_ID")

    r = cli("--everything", "--stack", "prod")
    assert r.code == 2 and "this deploy is prod; it would also empty the cache of: staging" in r.err

    r = cli("--tags", "a", "b", "--stack", "prod", "--dry-run")
    assert r.code == 0 and f"in zone {DEFAULT_ZONE}" in r.out and "plan pro" in r.out

    monkeypatch.setenv("CLOUDFLARE_ZONE_ID", "e" * 32)
    r = cli("--tags", "a", "--stack", "prod")
    assert r.code == 2 and "differs from cdn.zoneId of stack prod" in r.err
    monkeypatch.delenv("CLOUDFLARE_ZONE_ID")

    # Two stack files on one zone make it shared even where sharedZone was forgotten.
    (stacks / "Pulumi.staging.yaml").write_text("config:\n" + cdn.replace("sharedZone: true", "sharedZone: false"))
    r = cli("--everything", "--stack", "staging")
    assert r.code == 2 and "this deploy is staging; it would also empty the cache of: prod" in r.err
    assert fake.requests == []


# --- Changed assets -----------------------------------------------------------------------------


def test_manifest_diff_purges_changed_removed_and_their_entrypoints(cli, fake, tmp_path):
    old = {
        "assets": {
            "/index.html": "h1",
            "/about.html": "h2",
            "/shop.html": "h3",
            "/static/a.js": "A",
            "/static/b.js": "B1",
            "/static/c.css": "C",
        },
        "entrypoints": {
            "/": ["/static/a.js", "/static/b.js"],
            "/index.html": ["/static/a.js", "/static/b.js"],
            "/about.html": ["/static/a.js"],
            "/shop.html": ["/static/a.js", "/static/c.css"],
        },
    }
    new = {
        "assets": {
            "/index.html": "h1",
            "/about.html": "h2",
            "/shop.html": "h3",
            "/static/a.js": "A",
            "/static/b.js": "B2",
            "/static/d.css": "D",
        },
        "entrypoints": {
            "/": ["/static/a.js", "/static/b.js"],
            "/index.html": ["/static/a.js", "/static/b.js"],
            "/about.html": ["/static/a.js"],
            "/shop.html": ["/static/a.js", "/static/d.css"],
        },
    }
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    r = cli(
        "--changed-from",
        str(tmp_path / "old.json"),
        "--changed-to",
        str(tmp_path / "new.json"),
        "--base-url",
        "https://www.example.com/",
        "--json",
    )
    assert r.code == 0, r.text
    expected = {
        "https://www.example.com/static/b.js": "changed",
        "https://www.example.com/static/c.css": "removed",
        "https://www.example.com/": "entrypoint",
        "https://www.example.com/index.html": "entrypoint",
        "https://www.example.com/shop.html": "entrypoint",
    }
    assert fake.purge_counts() == {u: 1 for u in expected}
    assert {c["url"]: c["reason"] for c in r.json()["changes"]} == expected


def test_manifest_forms_and_errors(tmp_path, cli, fake):
    flat_old = manifest.parse({"/a.js": "1", "/b c.js": "1", "entrypoints": {"/": ["/a.js"]}})
    flat_new = manifest.parse({"/a.js": "1", "/b c.js": "2", "entrypoints": {"/": ["/a.js"]}})
    assert manifest.diff(flat_old, flat_new) == [manifest.Change("/b c.js", "changed")]
    assert manifest.url_for("https://x.example/app", "/b c.js") == "https://x.example/app/b%20c.js"
    assert manifest.diff(flat_new, flat_new) == []

    bad = tmp_path / "bad.json"
    bad.write_text('{"assets": {"/a.js": 3}}')
    good = tmp_path / "good.json"
    good.write_text('{"assets": {"/a.js": "x"}}')
    r = cli("--changed-from", str(good), "--changed-to", str(bad), "--base-url", "https://www.example.com")
    assert r.code == 2 and "must be a non-empty hash string" in r.err
    r = cli("--changed-from", str(good), "--changed-to", str(tmp_path / "missing.json"), "--base-url", "https://x.io")
    assert r.code == 2 and "cannot read manifest" in r.err

    unchanged = cli("--changed-from", str(good), "--changed-to", str(good), "--base-url", "https://www.example.com")
    assert unchanged.code == 0 and fake.requests == [] and "purged 0 of 0 URLs" in unchanged.out


# --- Before and after ---------------------------------------------------------------------------


def test_wait_for_polls_until_the_origin_serves_the_new_version(cli, fake, origin_factory):
    origin = origin_factory(lambda path, n: (200, {}, "version abc123\n" if n >= 3 else "version old\n"))
    clock = VirtualClock()
    r = cli("--files", *urls(5), "--wait-for", f"{origin.url}/version.txt", "--expect", "abc123", clock=clock)

    assert r.code == 0, r.text
    assert len(origin.paths) == 3 and clock.sleeps == [5.0, 5.0]
    assert all(p.startswith("/version.txt?perfstack-wait=") for p in origin.paths)  # past the edge cache
    assert len(fake.purged_items()) == 5 and fake.requests[0].time > origin.times[-1]


def test_wait_for_timeout_purges_nothing(cli, fake, origin_factory):
    origin = origin_factory(lambda path, n: (200, {}, "version old\n"))
    r = cli(
        "--files", *urls(5), "--wait-for", f"{origin.url}/version.txt", "--expect", "abc123", "--json",
        clock=VirtualClock(),
    )  # fmt: skip
    assert r.code == 1
    assert fake.requests == []
    assert len(origin.paths) == 61  # 300 s at one poll per 5 s, plus the first
    assert "did not contain 'abc123' within 300s" in r.err and "nothing was purged" in r.err
    doc = r.json()
    assert doc["wait"]["ok"] is False and doc["purged"] == [] and len(doc["failed"]) == 5
    assert doc["error"].startswith("--wait-for:") and doc["requests"] == 0


def test_wait_for_an_origin_that_is_down(cli, fake):
    r = cli(
        "--files", *urls(1), "--wait-for", "http://127.0.0.1:9/version.txt", "--expect", "x", "--wait-timeout", "10",
        clock=VirtualClock(),
    )  # fmt: skip
    assert r.code == 1 and fake.requests == [] and "ConnectError" in r.err


def test_verify_reports_cache_status_and_warns_on_hit(cli, fake, origin_factory):
    statuses = {"/assets/file-0000.js": "MISS", "/assets/file-0005.js": "HIT", "/assets/file-0009.js": "EXPIRED"}
    origin = origin_factory(lambda path, n: (200, {"cf-cache-status": statuses.get(path, "DYNAMIC")}, "x"))
    listed = urls(10, host=origin.url)
    r = cli("--files", *listed, "--verify", "--verify-sample", "3", "--json")

    assert r.code == 0, r.text  # a HIT is a warning, not a failure
    checks = {c["url"]: (c["cache_status"], c["level"]) for c in r.json()["verify"]}
    assert checks == {
        listed[0]: ("MISS", "ok"),
        listed[5]: ("HIT", "warning"),
        listed[9]: ("EXPIRED", "ok"),
    }
    assert f"verify: WARN {listed[5]}: HIT: the edge still served a cached copy" in r.err


def test_progress_bar_on_a_terminal(cli, fake):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    r = cli("--files", *urls(45), stderr=term)
    assert r.code == 0
    assert "purging 45 URLs" in term.getvalue() and "45/45" in term.getvalue()
    assert "batch 1/2" not in term.getvalue()  # the bar replaces the plain lines


# --- As a real process ------------------------------------------------------------------------


def test_runs_as_a_process(fake):
    env = {
        **os.environ,
        "CLOUDFLARE_API_TOKEN": fake.token,
        "CLOUDFLARE_ZONE_ID": fake.zone_id,
        "CLOUDFLARE_BASE_URL": fake.base_url,
        "PYTHONPATH": str(ROOT),
    }
    listed = urls(70)
    proc = subprocess.run(
        [sys.executable, "-m", "perfstack.cdn", "purge", "--files-from", "-", "--json"],
        input="\n".join(listed),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["purged"] == listed == fake.purged_items()
    assert fake.token not in proc.stdout + proc.stderr

    usage = subprocess.run(
        [sys.executable, "-m", "perfstack.cdn", "purge", "--files", "nope"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert usage.returncode == 2 and usage.stderr.startswith("error: --files: 'nope'")


def test_add_parser_wires_cdn_purge_into_a_parent_command(fake, capsys):
    import argparse

    parent = argparse.ArgumentParser(prog="perfstack")
    purge.add_parser(parent.add_subparsers(dest="command", required=True))
    args = parent.parse_args(["cdn", "purge", "--files", *urls(3)])
    assert args.func(args) == 0
    assert len(fake.purged_items()) == 3
    assert fake.token not in "".join(capsys.readouterr())
