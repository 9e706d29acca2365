"""A flaky API: 20% of creates committed and then left unanswered, ~30% of all requests
answered 429 or 5xx, 20 ms of added latency. ``apply`` still converges in one run: every
job exactly once, every input uploaded once, and the next plan has nothing to do.

Bounded: 50 jobs and a seeded fault stream. The injected 429s say ``Retry-After: 0``: the
client pauses every thread for the time a 429 asks (tests/client covers that), and a
realistic second per 429 would only make this test slow without testing more.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from e2e.harness import E2E, chat_requests

FAULTS: dict[str, Any] = {
    "latency": 0.02,
    "rate_429": 0.15,
    "rate_5xx": 0.18,  # drawn after the 429 draw: 0.15 + 0.85 * 0.18 = 30% of requests fail
    "drop_creates": 0.2,
    "retry_after": 0,
}
N_INLINE, N_FILES, N_INPUTS = 40, 10, 3


def test_apply_converges_through_drops_429s_and_5xxs(make_e2e: Any) -> None:
    e2e: E2E = make_e2e("--speed", "0.01", "--seed", "20240601")
    jobs: dict[str, dict[str, Any]] = {
        f"inline-{i:02d}": {"requests": chat_requests(2, text=f"inline {i}")}
        for i in range(N_INLINE)
    }
    root = e2e.root("faults", jobs)
    inputs = [
        root.input_file(f"in-{k}.jsonl", chat_requests(3, text=f"file {k}")) for k in range(3)
    ]
    for i in range(N_FILES):
        jobs[f"files-{i:02d}"] = {"inputs": [inputs[i % N_INPUTS]]}
    root.write()
    names = sorted(jobs)
    e2e.admin.faults(**FAULTS)

    applied = e2e.cli.run(root, "apply", "--auto-approve", "--parallelism", "16", timeout=120)

    e2e.admin.faults()  # off again: what follows observes, it does not retry
    assert applied.code == 0, str(applied)
    assert "Apply complete: 50 created, 0 replaced, 0 cancelled, 0 deleted." in applied.stdout
    # No duplicate, no missing job.
    assert e2e.live.per_name(root.workspace) == Counter(dict.fromkeys(names, 1))
    # Every distinct input uploaded exactly once (a 5xx upload was not kept; a lookup found
    # the ones that were), shared by the jobs that name it.
    files = e2e.live.sdk.files.list(search="reconciler-", page_size=100).data or []
    assert len(files) == N_INPUTS
    assert len({f.filename for f in files}) == N_INPUTS
    # The faults really happened, and dropped creates were adopted, not re-sent.
    log = e2e.admin.log()
    creates = [e for e in log if e.method == "POST" and e.path == "/v1/batch/jobs"]
    dropped = [e for e in creates if e.dropped]
    assert len(dropped) >= 3
    assert sum(1 for e in creates if e.status == 200) == len(names)
    assert sum(1 for e in log if e.status == 429) >= 10
    assert sum(1 for e in log if e.status >= 500) >= 10
    assert "The create went through: adopting" in applied.stdout

    # A second plan, through the same storm, has nothing to do.
    e2e.admin.faults(**FAULTS)
    second = e2e.cli.run(root, "plan", "--detailed-exitcode", timeout=60)
    e2e.admin.faults()
    assert second.code == 0, str(second)
    assert "No changes. Live jobs match the configuration." in second.stdout
