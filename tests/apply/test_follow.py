"""Following jobs to the end: one list read per poll, a line per status change in logs, a
redrawn frame on a terminal, a report of what did not succeed, timeouts."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator

import pytest

from reconciler.apply.follow import Follower, bar
from reconciler.client import MistralClient, RetryPolicy
from reconciler.emulator import LOCAL_BASE_URL, Emulator, InProcessTransport, ManualClock
from reconciler.errors import ReconcilerError
from reconciler.live import read_live_state

WS = "follow-tests"


@pytest.fixture
def client(emulator: Emulator) -> Iterator[MistralClient]:
    with MistralClient(
        LOCAL_BASE_URL,
        "follow-token",
        transport=InProcessTransport(emulator),
        retry=RetryPolicy(max_attempts=1),
    ) as made:
        yield made


def create(client: MistralClient, name: str, *, n: int = 100, bad: int = 0) -> str:
    requests = [
        {"custom_id": str(i), "body": {"max_tokens": 5}}
        if i < bad
        else {"custom_id": str(i), "body": {"messages": [{"role": "user", "content": "hi"}]}}
        for i in range(n)
    ]
    job = client.create_job(
        {
            "endpoint": "/v1/chat/completions",
            "model": "mistral-small-latest",
            "requests": requests,
            "metadata": {"reconciler.workspace": WS, "reconciler.job": name},
        }
    )
    return str(job["id"])


def follower(
    client: MistralClient, clock: ManualClock, out: io.StringIO, *, tty: bool, step: float = 0.5
) -> Follower:
    ticks = itertools.count()

    def sleep(seconds: float) -> None:
        clock.advance(seconds)  # the emulator's time passes while the follower waits

    return Follower(
        client,
        WS,
        out=out,
        tty=tty,
        color=False,
        poll=step,
        quiet_interval=10.0,
        sleep=sleep,
        monotonic=lambda: next(ticks) * step,
    )


def test_logs_get_a_line_per_status_change_and_the_report(
    client: MistralClient, emulator_clock: ManualClock
) -> None:
    create(client, "good", n=100)
    create(client, "broken", n=4, bad=4)
    out = io.StringIO()

    result = follower(client, emulator_clock, out, tty=False).follow(["good", "broken"])

    lines = out.getvalue().splitlines()
    statuses = [(line.split()[0], line.split()[-1]) for line in lines]
    # Each job: QUEUED, RUNNING, then its end; progress lines in between at most every 10 s.
    assert [s for s in statuses if s[0] == "broken"] == [
        ("broken", "QUEUED"),
        ("broken", "RUNNING"),
        ("broken", "FAILED"),
    ]
    good = [s for s in statuses if s[0] == "good"]
    assert good[0] == ("good", "QUEUED") and good[-1] == ("good", "SUCCESS")
    assert len(good) <= 4
    assert not any("\x1b[" in line for line in lines)
    assert result.report().splitlines() == [
        "2 jobs finished: 1 succeeded, 1 did not.",
        f"  - broken: FAILED [id={result.jobs['broken'].id}] (0/4 requests succeeded)",
    ]


def test_a_terminal_gets_one_frame_redrawn_in_place(
    client: MistralClient, emulator_clock: ManualClock
) -> None:
    create(client, "a", n=10)
    create(client, "b", n=10)
    out = io.StringIO()

    result = follower(client, emulator_clock, out, tty=True).follow(["a", "b"])

    text = out.getvalue()
    frames = text.count("\x1b[2F")  # cursor up two lines: the previous frame is overwritten
    assert frames >= 1
    assert text.count("\x1b[2K") == 2 * (frames + 1)
    assert result.report() == "2 jobs finished: 2 succeeded."


def test_a_timeout_reports_what_is_still_running(
    client: MistralClient, emulator_clock: ManualClock
) -> None:
    create(client, "long", n=5000)
    out = io.StringIO()

    result = follower(client, emulator_clock, out, tty=False).follow(["long"], timeout=2.0)

    assert result.timed_out
    assert result.report() == "Timed out: 1 of 1 jobs still running (long)."


def test_following_a_name_with_no_live_job_is_an_error(client: MistralClient) -> None:
    with pytest.raises(ReconcilerError, match="no live job named ghost to follow"):
        Follower(client, WS, out=io.StringIO(), tty=False, color=False).follow(["ghost"])


def test_one_list_read_per_poll_whatever_the_number_of_jobs(
    client: MistralClient, emulator_clock: ManualClock
) -> None:
    for i in range(30):
        create(client, f"job-{i}", n=5)
    client.reset_stats()

    follower(client, emulator_clock, io.StringIO(), tty=False, step=5.0).follow(
        [f"job-{i}" for i in range(30)]
    )

    assert set(client.stats) == {"list_jobs"}
    assert client.stats["list_jobs"] <= 3


def test_bar_shows_progress_and_status(client: MistralClient, emulator_clock: ManualClock) -> None:
    create(client, "half", n=100)
    emulator_clock.advance(2.0)  # 1 s queued, then 50 requests per second
    (job,) = read_live_state(client, WS).jobs
    assert bar(job, width=10) == "[#####-----]     50/100    RUNNING"
