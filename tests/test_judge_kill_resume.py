"""`harness judge` killed with SIGKILL at 5 random points against a fault-injecting OpenAI-compatible server on
127.0.0.1 (garbage answers that need a re-ask, 500s that need a retry): every finished call is in the cache the
moment it finishes, so each resume asks only for what was unfinished, no finished call is ever asked twice, and
the verdicts after the last resume are identical to an uninterrupted run's."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_judge_openai import KEY, judge_yaml, responses, shown
from test_openai_backend import FakeOpenAI, completion, error

ROOT = Path(__file__).resolve().parents[1]
N_ITEMS = 12  # 24 calls (robust: both orders), about 35 requests with the re-asks and retries


class FaultyJudge:
    """Prefers the text with GOOD; a third of the calls answer garbage on their first ask (a re-ask follows), a
    fifth get HTTP 500 on their very first request (a retry follows). While ``hold`` is set it answers nothing,
    so the test can kill the client at a point where every reply already sent has been processed."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.asked: list[str] = []  # (call, attempt) signature of every request, in order
        self.answered: list[str] = []  # calls whose final, parseable answer was sent
        self.hold = threading.Event()
        self.kill_at: int | None = None  # arm: on this many requests of the current run, hold and signal
        self.reached = threading.Event()
        self.run_requests = 0

    def __call__(self, body: dict, index: int):
        a, b = shown(body)
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        call = hashlib.sha256(user.encode()).hexdigest()[:12]
        signature = f"{call}:{len(body['messages'])}"
        with self.lock:
            self.asked.append(signature)
            self.run_requests += 1
            if self.kill_at is not None and self.run_requests >= self.kill_at:
                self.hold.set()
                self.reached.set()
            first_time = signature not in self.seen
            self.seen.add(signature)
        if self.hold.is_set():
            time.sleep(30)  # never answered: the client is killed meanwhile (the thread is a daemon)
            return error(503, "held")
        digest = int(call, 16)
        if first_time and digest % 5 == 0:
            return error(500, "injected fault")
        if len(body["messages"]) == 1 and digest % 3 == 0:
            return completion("I would rather not choose between these two.")
        letter = "A" if "GOOD" in a else "B"
        with self.lock:
            self.answered.append(call)
        return completion(f"Summary {letter} is better.\nVerdict: {letter}")


def judge_command(tmp_path: Path, config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "judge", "--task", "tldr", "--candidate", str(tmp_path / "cand.jsonl"),
            "--baseline", str(tmp_path / "base.jsonl"), "--judge", str(config), "--out", str(out), "--no-progress"]


def test_kill_9_at_five_points_then_resume(tmp_path, monkeypatch):
    texts = [f"GOOD summary {i}." if i % 2 == 0 else f"plain summary {i}." for i in range(N_ITEMS)]
    responses(tmp_path, "cand", texts, "sami")
    responses(tmp_path, "base", [f"GOOD other {i}." if i % 2 else f"meh {i}." for i in range(N_ITEMS)], "base")
    env = {**os.environ, "FAKE_JUDGE_KEY": KEY, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    rng = random.Random(20240607)
    server = FaultyJudge()
    table = []
    with FakeOpenAI(server) as fake:
        config = judge_yaml(tmp_path, fake.url, **{"concurrency: 16": "concurrency: 3"})

        # the reference: one uninterrupted run with its own cache
        reference = tmp_path / "reference"
        done = subprocess.run(judge_command(tmp_path, config, reference), env={
            **env, "SAMI_HARNESS_CACHE": str(tmp_path / "reference-cache")}, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        total = len(server.asked)
        expected = (reference / "verdicts.jsonl").read_text()

        # the same work, killed at 5 random points, each resumed by running the same command again
        server.seen.clear()
        server.asked.clear()
        server.answered.clear()
        env["SAMI_HARNESS_CACHE"] = str(tmp_path / "cache")
        out = tmp_path / "out"
        for kill in range(6):
            server.hold.clear()
            server.reached.clear()
            server.run_requests = 0
            server.kill_at = rng.randint(2, 6) if kill < 5 else None
            answered_before = set(server.answered)
            asked_before = len(server.asked)
            process = subprocess.Popen(judge_command(tmp_path, config, out), env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
            if server.kill_at is not None:
                assert server.reached.wait(40), "the judge never reached the kill point"
                time.sleep(0.5)  # every reply already sent is processed (and cached) by now; nothing else is answered
                process.send_signal(signal.SIGKILL)
                process.wait(10)
                assert process.returncode == -signal.SIGKILL
            else:
                stdout, stderr = process.communicate(timeout=60)
                assert process.returncode == 0, stderr
            asked = server.asked[asked_before:]
            again = {signature.split(":")[0] for signature in asked} & answered_before
            assert not again, f"run {kill + 1} asked finished calls again: {sorted(again)}"
            table.append((kill + 1, server.kill_at, len(asked), len(set(server.answered))))
        print("\nrun  kill-at-request  requests  calls-finished-so-far")
        for row in table:
            print("  ".join(str(value) for value in row))
        print(f"uninterrupted run: {total} requests; killed runs together: {len(server.asked)}")
    assert (out / "verdicts.jsonl").read_text() == expected
    # nothing was paid twice beyond the calls in flight at each kill (at most `concurrency` = 3 per kill)
    assert len(server.asked) <= total + 5 * 3 * 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["cached"] > 0
    assert KEY not in (out / "manifest.json").read_text()


def test_a_judge_whose_first_answers_all_fail_to_parse_stops_early(tmp_path, monkeypatch, capsys):
    from harness.cli import main

    monkeypatch.setenv("FAKE_JUDGE_KEY", KEY)
    monkeypatch.setenv("SAMI_HARNESS_CACHE", str(tmp_path / "cache"))
    cand = responses(tmp_path, "cand", [f"GOOD {i}." for i in range(30)], "sami")
    base = responses(tmp_path, "base", [f"meh {i}." for i in range(30)], "base")
    with FakeOpenAI(lambda body, index: completion("I cannot decide, both are lovely.")) as fake:
        config = judge_yaml(tmp_path, fake.url, **{"concurrency: 16": "concurrency: 2"})
        status = main(["judge", "--task", "tldr", "--candidate", str(cand), "--baseline", str(base), "--judge",
                       str(config), "--out", str(tmp_path / "out"), "--no-progress"])
        requests = len(fake.bodies)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert "unusable" in err[0] and "final-line" in err[0] and "I cannot decide" in err[0]
    assert requests < 60 * 3  # stopped after about 20 calls (3 asks each), not all 60
    assert not (tmp_path / "out" / "verdicts.jsonl").exists()


def test_a_second_process_on_the_same_output_folder_exits_naming_the_holder(tmp_path, monkeypatch, capsys):
    from harness.cli import main
    from harness.core.errors import HarnessError
    from harness.core.locks import folder_lock

    monkeypatch.setenv("SAMI_HARNESS_CACHE", str(tmp_path / "cache"))
    cand = responses(tmp_path, "cand", ["GOOD."], "sami")
    base = responses(tmp_path, "base", ["meh."], "base")
    out = tmp_path / "out"
    with folder_lock(out):
        status = main(["judge", "--task", "tldr", "--candidate", str(cand), "--baseline", str(base), "--judge",
                       "local", "--out", str(out), "--no-progress"])
        with pytest.raises(HarnessError, match=f"PID {os.getpid()}"):
            with folder_lock(out):
                pass
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and f"PID {os.getpid()}" in err[0] and ".harness.lock" in err[0], err
    assert not (out / "verdicts.jsonl").exists()
    with folder_lock(out):  # released: the next process gets it
        pass
