"""``limits:`` in reconciler.yaml: jobs above them are cut into shards, others unchanged."""

from __future__ import annotations

import json

from config.helpers import Workdir
from reconciler.config.loader import load
from reconciler.config.model import Limits
from reconciler.stream.shards import shard_spec

CONFIG = """\
version: 1
workspace: ws
defaults: {endpoint: /v1/chat/completions, model: mistral-small-latest}
"""
LINE = '{"custom_id": "%d", "body": {"messages": [{"role": "user", "content": "hi"}]}}\n'


def jobs(n_inline: int) -> str:
    requests = ", ".join(
        f'{{custom_id: "{i}", body: {{max_tokens: {i}}}}}' for i in range(n_inline)
    )
    return f"""\
jobs:
  big: {{inputs: [../data/big.jsonl]}}
  inline: {{requests: [{requests}]}}
"""


def test_default_limits_are_mistrals_and_a_job_within_them_is_not_split(
    workdir: Workdir,
) -> None:
    workdir.write(
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": jobs(5),
            "data/big.jsonl": "".join(LINE % i for i in range(25)),
        }
    )
    state = load(workdir.root)
    assert state.limits == Limits(100_000, 512 * 1024 * 1024, 1_000_000)
    assert [j.shards for j in state.jobs] == [(), ()]


def test_jobs_above_the_limits_are_cut_into_shards_and_single_shard_digests_do_not_move(
    workdir: Workdir,
) -> None:
    workdir.write(
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": jobs(5),
            "data/big.jsonl": "".join(LINE % i for i in range(25)),
        }
    )
    before = {j.name: j.digest for j in load(workdir.root).jobs}
    workdir.write({"reconciler.yaml": CONFIG + "limits: {max_requests_per_job: 10}\n"})
    state = load(workdir.root)
    big, inline = state.jobs
    assert [s.requests for s in big.shards] == [10, 10, 5]
    assert inline.shards == ()  # 5 requests fit: unchanged, same digest as before
    assert inline.digest == before["inline"]
    assert big.digest == before["big"]  # the job's own identity does not move either
    last = shard_spec(big, big.shards[2])
    assert last.inputs[0].path == "data/big.jsonl:21-25"
    workdir.write({"reconciler.yaml": CONFIG + "limits: {max_requests_per_job: 2}\n"})
    inline = load(workdir.root).jobs[1]
    assert [s.requests for s in inline.shards] == [2, 2, 1]
    assert json.loads(shard_spec(inline, inline.shards[2]).requests_json or "") == [
        {"custom_id": "4", "body": {"max_tokens": 4}}
    ]


def test_bad_limits_are_reported_at_their_line(workdir: Workdir) -> None:
    workdir.write(
        {
            "reconciler.yaml": CONFIG + "limits:\n  max_requests_per_job: 0\n  max_files: 3\n",
            "jobs/a.yaml": "jobs: {}\n",
        }
    )
    result = workdir.validate()
    assert result.exit_code == 1
    assert result.output.splitlines()[:2] == [
        "reconciler.yaml:5:25: limits.max_requests_per_job: must be at least 1 (got 0)",
        "reconciler.yaml:6:3: limits.max_files: unknown field (expected one of:"
        " max_bytes_per_file, max_pending_requests, max_requests_per_job)",
    ]
    assert "Traceback" not in result.output


def test_a_request_larger_than_a_shard_file_is_named(workdir: Workdir) -> None:
    workdir.write(
        {
            "reconciler.yaml": CONFIG
            + "limits: {max_requests_per_job: 1, max_bytes_per_file: 100}\n",
            "jobs/a.yaml": "jobs:\n  big: {inputs: [../data/big.jsonl]}\n",
            "data/big.jsonl": LINE % 1 + LINE.replace("hi", "x" * 200) % 2 + LINE % 3,
        }
    )
    result = workdir.validate()
    assert result.exit_code == 1
    assert "data/big.jsonl:2:1: request is" in result.output
    assert "more than limits.max_bytes_per_file (100): it fits in no shard" in result.output
