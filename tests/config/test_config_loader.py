"""load(root) on valid roots: merging, resolution, ordering, and what the specs hold."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from config.helpers import Workdir
from reconciler.config.loader import load
from reconciler.config.model import DEFAULT_SERVER, OnChange
from reconciler.errors import ConfigError, Location

CONFIG = """\
version: 1
workspace: research-evals
defaults:
  endpoint: /v1/chat/completions
  model: mistral-small-latest
  timeout_hours: 12
  metadata: {team: research, tier: gold}
"""
LINE = '{"custom_id": "%s", "body": {"messages": [{"role": "user", "content": "hi"}]}}\n'


def test_defaults_merge_under_jobs_and_metadata_merges_key_by_key(workdir: Workdir) -> None:
    workdir.write(
        {
            "reconciler.yaml": CONFIG,
            "jobs/evals.yaml": """\
jobs:
  cheese-eval:
    model: mistral-medium-latest
    inputs: [../data/cheese.jsonl]
    metadata: {dataset: cheese-v2, tier: silver}
    max_attempts: 2
    on_change: wait
    prevent_destroy: true
    history_limit: 3
""",
            "data/cheese.jsonl": LINE % "a" + "\n" + LINE % "b",
        }
    )
    state = load(Path("."))
    (job,) = state.jobs
    data = (LINE % "a" + "\n" + LINE % "b").encode()
    assert job.name == "cheese-eval"
    assert job.endpoint == "/v1/chat/completions"
    assert (job.model, job.agent_id) == ("mistral-medium-latest", None)
    assert job.timeout_hours == 12
    assert job.metadata == (("dataset", "cheese-v2"), ("team", "research"), ("tier", "silver"))
    assert (job.max_attempts, job.on_change, job.prevent_destroy, job.history_limit) == (
        2,
        OnChange.WAIT,
        True,
        3,
    )
    (local,) = job.inputs
    assert local.path == "data/cheese.jsonl"
    assert local.sha256 == hashlib.sha256(data).hexdigest()
    assert (local.size, local.lines) == (len(data), 2)
    assert job.source == Location("jobs/evals.yaml", 2, 3)
    assert str(job.source) == "jobs/evals.yaml:2:3"


def test_state_fields_and_defaults(workdir: Workdir) -> None:
    workdir.write(
        {
            "reconciler.yaml": "version: 1\nworkspace: ws\n",
            "jobs/a.yaml": """\
jobs:
  plain:
    endpoint: /v1/embeddings
    model: mistral-embed
    input_files: [6f1c2e0a-1111-2222-3333-444455556666]
""",
        }
    )
    state = load(workdir.root)
    assert state.root == str(workdir.root)
    assert state.workspace == "ws"
    assert state.server == DEFAULT_SERVER == "https://api.mistral.ai"
    assert state.safety.max_destroy == 10
    assert state.config_file == "reconciler.yaml"
    assert state.files == ("reconciler.yaml", "jobs/a.yaml")
    (job,) = state.jobs
    assert job.input_files == ("6f1c2e0a-1111-2222-3333-444455556666",)
    assert (job.timeout_hours, job.max_attempts, job.on_change) == (24, 1, OnChange.REPLACE)
    assert (job.prevent_destroy, job.history_limit, job.metadata) == (False, None, ())
    assert job.requests_json is None and job.inputs == ()


def test_a_job_choosing_one_field_of_a_group_takes_none_of_it_from_defaults(
    workdir: Workdir,
) -> None:
    """Defaults give model and inline requests; an agent job with local inputs must not
    inherit either (it would otherwise have both model and agent_id, two sources)."""
    workdir.write(
        {
            "reconciler.yaml": CONFIG
            + "  requests: [{custom_id: d, body: {messages: [{role: user, content: x}]}}]\n",
            "jobs/a.yaml": """\
jobs:
  agent-job:
    agent_id: ag-123
    inputs: [../data/in.jsonl]
  inherits-all: {}
""",
            "data/in.jsonl": LINE % "a",
        }
    )
    state = load(workdir.root)
    agent, inherits = state.jobs
    assert (agent.model, agent.agent_id, agent.requests_json) == (None, "ag-123", None)
    assert len(agent.inputs) == 1
    assert inherits.model == "mistral-small-latest"
    assert inherits.requests == [
        {"custom_id": "d", "body": {"messages": [{"role": "user", "content": "x"}]}}
    ]


def test_include_globs_are_recursive_sorted_and_skip_hidden_folders(workdir: Workdir) -> None:
    job = "jobs:\n  {name}:\n    requests: [{{body: {{messages: []}}}}]\n"
    workdir.write(
        {
            "reconciler.yaml": CONFIG + 'include: ["jobs/**/*.yaml", "extra/*.yaml"]\n',
            "jobs/z.yaml": job.format(name="z"),
            "jobs/deep/er/a.yaml": job.format(name="a"),
            "jobs/b.yml": job.format(name="not-included"),
            "jobs/.hidden/c.yaml": job.format(name="hidden"),
            "extra/m.yaml": job.format(name="m"),
        }
    )
    state = load(workdir.root)
    assert [j.name for j in state.jobs] == ["a", "m", "z"]
    assert state.files == (
        "reconciler.yaml",
        "extra/m.yaml",
        "jobs/deep/er/a.yaml",
        "jobs/z.yaml",
    )


def test_default_include_may_match_nothing(workdir: Workdir) -> None:
    workdir.write({"reconciler.yaml": CONFIG + "jobs: {}\n"})
    assert load(workdir.root).jobs == ()


def test_include_matching_reconciler_yaml_does_not_read_it_twice(workdir: Workdir) -> None:
    workdir.write(
        {
            "reconciler.yaml": CONFIG
            + 'include: ["*.yaml"]\njobs:\n  j: {requests: [{body: {}}]}\n',
        }
    )
    state = load(workdir.root)
    assert [j.name for j in state.jobs] == ["j"]
    assert state.files == ("reconciler.yaml",)


def test_inputs_resolve_against_the_file_naming_them(workdir: Workdir) -> None:
    workdir.write(
        {
            "reconciler.yaml": CONFIG + "  inputs: [data/shared.jsonl]\n",
            "jobs/team/a.yaml": "jobs:\n  own:\n    inputs: [local.jsonl]\n  shared: {}\n",
            "jobs/team/local.jsonl": LINE % "x",
            "data/shared.jsonl": LINE % "y",
        }
    )
    jobs = load(workdir.root).by_name()
    assert [i.path for i in jobs["own"].inputs] == ["jobs/team/local.jsonl"]
    assert [i.path for i in jobs["shared"].inputs] == ["data/shared.jsonl"]


def test_symlink_inside_the_root_is_followed(workdir: Workdir) -> None:
    workdir.write(
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": "jobs:\n  j:\n    inputs: [../data/latest.jsonl]\n",
            "data/v3.jsonl": LINE % "x",
            "data/latest.jsonl": ("symlink", "v3.jsonl"),
        }
    )
    (job,) = load(workdir.root).jobs
    assert job.inputs[0].path == "data/latest.jsonl"
    assert job.inputs[0].sha256 == hashlib.sha256((LINE % "x").encode()).hexdigest()


def test_absolute_input_path_inside_the_root_is_accepted(workdir: Workdir) -> None:
    data = workdir.root / "data" / "in.jsonl"
    workdir.write(
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": f"jobs:\n  j:\n    inputs: [{json.dumps(str(data))}]\n",
            "data/in.jsonl": LINE % "x",
        }
    )
    (job,) = load(workdir.root).jobs
    assert job.inputs[0].path == "data/in.jsonl"


def test_requests_json_is_canonical(workdir: Workdir) -> None:
    workdir.write(
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": """\
jobs:
  j:
    requests:
      - body: {messages: [{role: user, content: "héllo"}], max_tokens: 5}
        custom_id: "1"
      - {custom_id: null, body: {}}
""",
        }
    )
    (job,) = load(workdir.root).jobs
    assert job.requests_json == (
        '[{"body":{"max_tokens":5,"messages":[{"content":"héllo","role":"user"}]},'
        '"custom_id":"1"},{"body":{}}]'
    )
    assert job.request_count == 2


def test_yaml_anchors_and_merge_keys_are_supported(workdir: Workdir) -> None:
    workdir.write(
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": """\
x-common: &common
  timeout_hours: 3
  requests: [{body: {messages: [{role: user, content: hi}]}}]
jobs:
  a:
    <<: *common
    timeout_hours: 5
  b: *common
""",
        }
    )
    state = load(workdir.root)
    assert state.by_name()["a"].timeout_hours == 5
    assert state.by_name()["b"].timeout_hours == 3


def test_files_outside_the_working_folder_are_shown_absolute(
    workdir: Workdir, tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "reconciler.yaml").write_text("version: 1\nworkspace: ws\nserver: nope\n")
    with pytest.raises(ConfigError) as err:
        load(other)
    (problem,) = err.value.problems
    assert problem.location == Location(str(other / "reconciler.yaml"), 3, 9)


def test_validate_success_summary(workdir: Workdir) -> None:
    workdir.write(
        {
            "reconciler.yaml": CONFIG + "jobs:\n  one: {requests: [{body: {}}]}\n",
            "jobs/a.yaml": "jobs:\n  two: {requests: [{body: {}}]}\n",
            "jobs/b.yaml": "jobs:\n  three: {requests: [{body: {}}]}\n",
        }
    )
    result = workdir.validate()
    assert result.exit_code == 0, result.output
    assert (
        result.stdout == "Configuration is valid: 3 jobs in 3 files (workspace research-evals).\n"
    )
    assert result.stderr == ""


def test_validate_one_job_one_file_is_singular(workdir: Workdir) -> None:
    workdir.write({"reconciler.yaml": CONFIG + "jobs:\n  one: {requests: [{body: {}}]}\n"})
    result = workdir.validate()
    assert result.stdout == "Configuration is valid: 1 job in 1 file (workspace research-evals).\n"


def test_validate_reads_the_root_given_by_chdir(workdir: Workdir, tmp_path: Path) -> None:
    root = tmp_path / "elsewhere"
    root.mkdir()
    (root / "reconciler.yaml").write_text("version: 1\nworkspace: far\n")
    result = workdir.cli("-C", str(root), "validate")
    assert result.exit_code == 0
    assert result.stdout == "Configuration is valid: 0 jobs in 1 file (workspace far).\n"
