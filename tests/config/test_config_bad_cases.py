"""A corpus of broken config roots: each one must make ``reconciler validate`` exit 1 and
print exactly these problem lines (``file:LINE:COL: field.path: message``) on stderr.

The autouse ``no_network`` fixture (conftest.py) fails any test that tries to connect.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from config.helpers import Workdir

CONFIG = """\
version: 1
workspace: ws
defaults:
  endpoint: /v1/chat/completions
  model: mistral-small-latest
"""
NO_MODEL_CONFIG = """\
version: 1
workspace: ws
defaults:
  endpoint: /v1/chat/completions
"""
JOB = """\
jobs:
  ok:
    requests:
      - body: {messages: [{role: user, content: hi}]}
"""
LINE = '{"custom_id": "%s", "body": {"messages": [{"role": "user", "content": "hi"}]}}\n'
INPUT_JOB = """\
jobs:
  ok:
    inputs: [../data/in.jsonl]
"""
UUID = "6f1c2e0a-1111-2222-3333-444455556666"


@dataclass(frozen=True)
class Case:
    id: str
    files: dict[str, str | bytes | tuple[str, str]]
    expected: tuple[str, ...]


def job(body: str) -> dict[str, str | bytes | tuple[str, str]]:
    """reconciler.yaml plus jobs/a.yaml holding ``jobs:\\n  x:\\n`` + ``body``."""
    return {"reconciler.yaml": CONFIG, "jobs/a.yaml": "jobs:\n  x:\n" + body}


REQ = "    requests: [{body: {messages: [{role: user, content: hi}]}}]\n"

CASES = [
    # -- reconciler.yaml itself ----------------------------------------------------------
    Case(
        "no-config",
        {"jobs/a.yaml": JOB},
        (
            "reconciler.yaml: not found; run in the folder holding it, or name that folder"
            " with -C/--chdir ROOT",
        ),
    ),
    Case(
        "config-yml-extension",
        {"reconciler.yml": CONFIG},
        ("reconciler.yaml: not found; found reconciler.yml: rename it to reconciler.yaml",),
    ),
    Case(
        "config-empty",
        {"reconciler.yaml": "# nothing yet\n"},
        ("reconciler.yaml:1:1: file is empty; it needs at least 'version: 1' and 'workspace:'",),
    ),
    Case(
        "config-is-a-list",
        {"reconciler.yaml": "- version: 1\n"},
        (
            "reconciler.yaml:1:1: must be a mapping with 'version:', 'workspace:' and more,"
            " not a list",
        ),
    ),
    Case(
        "config-not-utf8",
        {"reconciler.yaml": b"version: 1\nworkspace: caf\xe9\n"},
        ("reconciler.yaml:2:15: not valid UTF-8 (byte 0xe9); save as UTF-8",),
    ),
    Case(
        "config-syntax-error",
        {"reconciler.yaml": "version: 1\nworkspace: ws: x\n"},
        ("reconciler.yaml:2:14: invalid YAML: mapping values are not allowed in this context",),
    ),
    Case(
        "config-tab-indent",
        {"reconciler.yaml": "version: 1\nworkspace: ws\nsafety:\n\tmax_destroy: 1\n"},
        (
            "reconciler.yaml:4:1: invalid YAML: found character that cannot start any token"
            " (while scanning for the next token at line 4); indent with spaces, not tabs",
        ),
    ),
    Case(
        "config-duplicate-key",
        {"reconciler.yaml": "version: 1\nworkspace: ws\nworkspace: other\n"},
        (
            "reconciler.yaml:3:1: workspace: duplicate key 'workspace' (first at line 2);"
            " YAML keeps only one of them",
        ),
    ),
    Case(
        "config-unknown-field",
        {"reconciler.yaml": "version: 1\nworkspace: ws\nworkpsace: ws\n"},
        ("reconciler.yaml:3:1: workpsace: unknown field (did you mean 'workspace'?)",),
    ),
    Case(
        "config-unknown-field-no-suggestion",
        {"reconciler.yaml": "version: 1\nworkspace: ws\ncolour: red\n"},
        (
            "reconciler.yaml:3:1: colour: unknown field (expected one of: defaults, include,"
            " jobs, limits, prices, safety, server, version, workspace)",
        ),
    ),
    Case(
        "config-version-2",
        {"reconciler.yaml": "version: 2\nworkspace: ws\n"},
        ("reconciler.yaml:1:10: version: must be 1, not 2",),
    ),
    Case(
        "config-missing-workspace",
        {"reconciler.yaml": "version: 1\n"},
        ("reconciler.yaml:1:1: workspace: missing required field",),
    ),
    Case(
        "config-bad-workspace",
        {"reconciler.yaml": "version: 1\nworkspace: Research Evals\n"},
        (
            "reconciler.yaml:2:12: workspace: 'Research Evals': workspace names use lowercase"
            " letters, digits, '-', '_', '.' and '/', start with a letter or digit,"
            " 1 to 128 characters",
        ),
    ),
    Case(
        "config-bad-server",
        {"reconciler.yaml": "version: 1\nworkspace: ws\nserver: api.mistral.ai\n"},
        (
            "reconciler.yaml:3:9: server: 'api.mistral.ai': must be 'local' or an http(s) URL"
            " such as https://api.mistral.ai",
        ),
    ),
    Case(
        "config-max-destroy-negative",
        {"reconciler.yaml": "version: 1\nworkspace: ws\nsafety: {max_destroy: -1}\n"},
        ("reconciler.yaml:3:23: safety.max_destroy: must be at least 0 (got -1)",),
    ),
    Case(
        "config-two-documents",
        {"reconciler.yaml": "version: 1\nworkspace: ws\n---\nversion: 1\n"},
        (
            "reconciler.yaml:3:1: a file holds one YAML document, but this starts a second one"
            " ('---')",
        ),
    ),
    Case(
        "defaults-unknown-field",
        {"reconciler.yaml": CONFIG + "  timeout: 3\n", "jobs/a.yaml": JOB},
        ("reconciler.yaml:6:3: defaults.timeout: unknown field (did you mean 'timeout_hours'?)",),
    ),
    # -- include ---------------------------------------------------------------------------
    Case(
        "include-matches-nothing",
        {"reconciler.yaml": CONFIG + "include: [job/*.yaml]\n", "jobs/a.yaml": JOB},
        (
            "reconciler.yaml:6:11: include[0]: 'job/*.yaml' matches no file (remove it if that"
            " is intended)",
        ),
    ),
    Case(
        "include-escapes-root",
        {"reconciler.yaml": CONFIG + 'include: ["../shared/*.yaml"]\n'},
        (
            "reconciler.yaml:6:11: include[0]: '../shared/*.yaml' must stay inside the config"
            " root (no '..'; use '/' between folders)",
        ),
    ),
    Case(
        "include-absolute",
        {"reconciler.yaml": CONFIG + 'include: ["/etc/*.yaml"]\n'},
        ("reconciler.yaml:6:11: include[0]: '/etc/*.yaml' must be relative to the config root",),
    ),
    Case(
        "config-symlink-out-of-root",
        {"../outside.yaml": CONFIG, "reconciler.yaml": ("symlink", "../outside.yaml")},
        (
            "reconciler.yaml: leads outside the config root through a symlink; configuration"
            " files must live inside it (the file was not read)",
        ),
    ),
    Case(
        "config-symlink-absolute-out-of-root",
        {"reconciler.yaml": ("symlink", "/etc/hostname")},
        (
            "reconciler.yaml: leads outside the config root through a symlink; configuration"
            " files must live inside it (the file was not read)",
        ),
    ),
    Case(
        "job-file-symlink-out-of-root",
        {"reconciler.yaml": CONFIG, "jobs/a.yaml": ("symlink", "/etc/hostname")},
        ("jobs/a.yaml: job file leads outside the config root through a symlink",),
    ),
    # -- job files -------------------------------------------------------------------------
    Case(
        "job-file-empty",
        {"reconciler.yaml": CONFIG, "jobs/a.yaml": ""},
        (
            "jobs/a.yaml:1:1: file is empty; a job file maps job names under 'jobs:' (write"
            " 'jobs: {}' for none)",
        ),
    ),
    Case(
        "job-file-is-a-list",
        {"reconciler.yaml": CONFIG, "jobs/a.yaml": "- name: x\n  model: m\n"},
        ("jobs/a.yaml:1:1: must be a mapping with a 'jobs:' key holding job names, not a list",),
    ),
    Case(
        "job-file-misspelt-jobs",
        {"reconciler.yaml": CONFIG, "jobs/a.yaml": "job:\n  x: {}\n"},
        (
            "jobs/a.yaml:1:1: job: unknown field (did you mean 'jobs'?)",
            "jobs/a.yaml:1:1: jobs: missing required field",
        ),
    ),
    Case(
        "job-file-python-tag",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": "jobs:\n  x:\n    model: !!python/object/apply:os.system [id]\n" + REQ,
        },
        ("jobs/a.yaml:3:12: jobs.x.model: unsupported YAML tag !!python/object/apply:os.system",),
    ),
    Case(
        "job-name-uppercase",
        {"reconciler.yaml": CONFIG, "jobs/a.yaml": "jobs:\n  Cheese_Eval:\n" + REQ},
        (
            "jobs/a.yaml:2:3: jobs.Cheese_Eval: 'Cheese_Eval': job names use lowercase letters,"
            " digits, '-', '_' and '.', 1 to 63 characters",
        ),
    ),
    Case(
        "job-name-too-long",
        {"reconciler.yaml": CONFIG, "jobs/a.yaml": "jobs:\n  " + "a" * 64 + ":\n" + REQ},
        (
            f"jobs/a.yaml:2:3: jobs.{'a' * 64}: '{'a' * 37}...': job names use lowercase"
            " letters, digits, '-', '_' and '.', 1 to 63 characters",
        ),
    ),
    Case(
        "job-name-duplicate-across-files",
        {"reconciler.yaml": CONFIG, "jobs/a.yaml": JOB, "jobs/team/b.yaml": JOB},
        (
            "jobs/team/b.yaml:2:3: jobs.ok: job 'ok' is already defined at jobs/a.yaml:2:3;"
            " job names must be unique across the config root",
        ),
    ),
    Case(
        "job-name-duplicate-config-and-file",
        {"reconciler.yaml": CONFIG + JOB, "jobs/a.yaml": JOB},
        (
            "jobs/a.yaml:2:3: jobs.ok: job 'ok' is already defined at reconciler.yaml:7:3;"
            " job names must be unique across the config root",
        ),
    ),
    Case(
        "job-name-duplicate-key-same-file",
        {"reconciler.yaml": CONFIG, "jobs/a.yaml": JOB + "  ok:\n" + REQ},
        (
            "jobs/a.yaml:5:3: jobs.ok: duplicate key 'ok' (first at line 2); YAML keeps only"
            " one of them",
        ),
    ),
    Case(
        "job-is-null",
        {"reconciler.yaml": CONFIG, "jobs/a.yaml": "jobs:\n  x:\n"},
        ("jobs/a.yaml:2:5: jobs.x: must be a mapping, not null",),
    ),
    # -- job fields ------------------------------------------------------------------------
    Case(
        "job-unknown-field",
        job("    modle: mistral-large-latest\n" + REQ),
        ("jobs/a.yaml:3:5: jobs.x.modle: unknown field (did you mean 'model'?)",),
    ),
    Case(
        "job-bad-endpoint",
        job("    endpoint: /v1/chat/completion\n" + REQ),
        (
            "jobs/a.yaml:3:15: jobs.x.endpoint: '/v1/chat/completion' is not one of:"
            " /v1/chat/completions, /v1/embeddings, /v1/fim/completions, /v1/moderations,"
            " /v1/chat/moderations, /v1/ocr, /v1/classifications, /v1/chat/classifications,"
            " /v1/conversations, /v1/audio/transcriptions (did you mean '/v1/chat/completions'?)",
        ),
    ),
    Case(
        "job-model-and-agent",
        job("    model: m\n    agent_id: a\n" + REQ),
        ("jobs/a.yaml:2:3: jobs.x: set only one of model and agent_id",),
    ),
    Case(
        "job-neither-model-nor-agent",
        {"reconciler.yaml": NO_MODEL_CONFIG, "jobs/a.yaml": "jobs:\n  x:\n" + REQ},
        ("jobs/a.yaml:2:3: jobs.x: needs a model or an agent_id (here or in defaults:)",),
    ),
    Case(
        "job-no-input-source",
        job("    timeout_hours: 2\n"),
        (
            "jobs/a.yaml:2:3: jobs.x: needs an input source: inputs (local JSONL files),"
            " input_files (uploaded file ids), requests (inline) or prompts (generated from rows)",
        ),
    ),
    Case(
        "job-two-input-sources",
        job(f"    input_files: [{UUID}]\n" + REQ),
        (
            "jobs/a.yaml:2:3: jobs.x: set only one input source: inputs, input_files, requests"
            " or prompts",
        ),
    ),
    Case(
        "job-no-endpoint-anywhere",
        {
            "reconciler.yaml": "version: 1\nworkspace: ws\n",
            "jobs/a.yaml": "jobs:\n  x:\n    model: m\n" + REQ,
        },
        ("jobs/a.yaml:2:3: jobs.x.endpoint: missing (set it here or in defaults:)",),
    ),
    Case(
        "job-timeout-zero",
        job("    timeout_hours: 0\n" + REQ),
        ("jobs/a.yaml:3:20: jobs.x.timeout_hours: must be at least 1 (got 0)",),
    ),
    Case(
        "job-timeout-too-long",
        job("    timeout_hours: 169\n" + REQ),
        ("jobs/a.yaml:3:20: jobs.x.timeout_hours: must be at most 168 (got 169)",),
    ),
    Case(
        "job-timeout-string",
        job('    timeout_hours: "24"\n' + REQ),
        ("jobs/a.yaml:3:20: jobs.x.timeout_hours: must be an integer, not a string",),
    ),
    Case(
        "job-max-attempts-zero",
        job("    max_attempts: 0\n" + REQ),
        ("jobs/a.yaml:3:19: jobs.x.max_attempts: must be at least 1 (got 0)",),
    ),
    Case(
        "job-on-change-typo",
        job("    on_change: wiat\n" + REQ),
        (
            "jobs/a.yaml:3:16: jobs.x.on_change: 'wiat' is not one of: replace, wait"
            " (did you mean 'wait'?)",
        ),
    ),
    Case(
        "job-prevent-destroy-string",
        job('    prevent_destroy: "true"\n' + REQ),
        ("jobs/a.yaml:3:22: jobs.x.prevent_destroy: must be true or false, not a string",),
    ),
    Case(
        "job-history-limit-negative",
        job("    history_limit: -1\n" + REQ),
        ("jobs/a.yaml:3:20: jobs.x.history_limit: must be at least 0 (got -1)",),
    ),
    Case(
        "job-input-files-not-ids",
        job("    input_files: [data/in.jsonl]\n"),
        (
            "jobs/a.yaml:3:19: jobs.x.input_files[0]: 'data/in.jsonl': must be an uploaded"
            " file's id (a UUID); local files go under inputs:",
        ),
    ),
    # -- metadata --------------------------------------------------------------------------
    Case(
        "metadata-reserved-key",
        job("    metadata: {reconciler.job: y}\n" + REQ),
        (
            "jobs/a.yaml:3:16: jobs.x.metadata.reconciler.job: metadata keys starting with"
            " 'reconciler.' are reserved for the reconciler's own tags",
        ),
    ),
    Case(
        "metadata-reserved-key-in-defaults",
        {
            "reconciler.yaml": CONFIG + "  metadata:\n    reconciler.workspace: other\n",
            "jobs/a.yaml": JOB,
        },
        (
            "reconciler.yaml:7:5: defaults.metadata.reconciler.workspace: metadata keys"
            " starting with 'reconciler.' are reserved for the reconciler's own tags",
        ),
    ),
    Case(
        "metadata-key-too-long",
        job(f"    metadata: {{{'k' * 33}: v}}\n" + REQ),
        (
            f"jobs/a.yaml:3:16: jobs.x.metadata.{'k' * 33}: key must be at most 32 characters"
            " (this is 33)",
        ),
    ),
    Case(
        "metadata-value-too-long",
        job(f"    metadata: {{k: {'v' * 513}}}\n" + REQ),
        ("jobs/a.yaml:3:19: jobs.x.metadata.k: must be at most 512 characters (this is 513)",),
    ),
    Case(
        "metadata-value-number",
        job("    metadata: {version: 2.10}\n" + REQ),
        (
            "jobs/a.yaml:3:25: jobs.x.metadata.version: must be a string, not a number;"
            ' quote it: "2.10"',
        ),
    ),
    Case(
        "metadata-value-empty",
        job('    metadata: {dataset: ""}\n' + REQ),
        ("jobs/a.yaml:3:25: jobs.x.metadata.dataset: must not be empty",),
    ),
    # -- inline requests -------------------------------------------------------------------
    Case(
        "requests-empty",
        job("    requests: []\n"),
        ("jobs/a.yaml:3:15: jobs.x.requests: must not be empty",),
    ),
    Case(
        "requests-missing-body",
        job("    requests:\n      - custom_id: a\n"),
        ("jobs/a.yaml:4:9: jobs.x.requests[0].body: missing required field",),
    ),
    Case(
        "requests-unknown-key",
        job("    requests:\n      - {custom_id: a, bdy: {}}\n"),
        (
            "jobs/a.yaml:4:9: jobs.x.requests[0].body: missing required field",
            "jobs/a.yaml:4:24: jobs.x.requests[0].bdy: unknown field (did you mean 'body'?)",
        ),
    ),
    Case(
        "requests-duplicate-custom-id",
        job("    requests:\n      - {custom_id: a, body: {}}\n      - {custom_id: a, body: {}}\n"),
        (
            "jobs/a.yaml:5:21: jobs.x.requests[1].custom_id: duplicate 'a' (first at line 4);"
            " custom_ids must be unique within a job",
        ),
    ),
    Case(
        "requests-nan",
        job("    requests:\n      - {body: {temperature: .nan}}\n"),
        (
            "jobs/a.yaml:4:30: jobs.x.requests[0].body.temperature: must be a finite number"
            " (JSON has no NaN or infinity)",
        ),
    ),
    Case(
        "requests-too-many",
        job("    requests:\n" + "      - {body: {}}\n" * 10_001),
        ("jobs/a.yaml:4:7: jobs.x.requests: must have at most 10,000 items (this has 10,001)",),
    ),
    # -- local inputs ----------------------------------------------------------------------
    Case(
        "inputs-missing-file",
        {"reconciler.yaml": CONFIG, "jobs/a.yaml": INPUT_JOB},
        ("jobs/a.yaml:3:14: jobs.ok.inputs[0]: no such file: data/in.jsonl",),
    ),
    Case(
        "inputs-dotdot-escape",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": "jobs:\n  ok:\n    inputs: [../../../etc/passwd]\n",
        },
        (
            "jobs/a.yaml:3:14: jobs.ok.inputs[0]: is outside the config root; input files must"
            " live inside it",
        ),
    ),
    Case(
        "inputs-absolute-outside",
        {"reconciler.yaml": CONFIG, "jobs/a.yaml": "jobs:\n  ok:\n    inputs: [/etc/passwd]\n"},
        (
            "jobs/a.yaml:3:14: jobs.ok.inputs[0]: is outside the config root; input files must"
            " live inside it",
        ),
    ),
    Case(
        "inputs-symlink-out-of-root",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": INPUT_JOB,
            "data/in.jsonl": ("symlink", "/etc/passwd"),
        },
        (
            "jobs/a.yaml:3:14: jobs.ok.inputs[0]: data/in.jsonl leads outside the config root"
            " through a symlink",
        ),
    ),
    Case(
        "inputs-directory",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": "jobs:\n  ok:\n    inputs: [../data]\n",
            "data/in.jsonl": LINE % "a",
        },
        ("jobs/a.yaml:3:14: jobs.ok.inputs[0]: data is a folder",),
    ),
    Case(
        "inputs-listed-twice",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": "jobs:\n  ok:\n    inputs: [../data/in.jsonl, ../data/./in.jsonl]\n",
            "data/in.jsonl": LINE % "a",
        },
        ("jobs/a.yaml:3:32: jobs.ok.inputs[1]: data/in.jsonl is already listed as inputs[0]",),
    ),
    Case(
        "inputs-defaults-relative-to-config",
        {
            "reconciler.yaml": CONFIG + "  inputs: [in.jsonl]\n",
            "jobs/a.yaml": "jobs:\n  ok: {}\n",
            "jobs/in.jsonl": LINE % "a",
        },
        ("reconciler.yaml:6:12: defaults.inputs[0]: no such file: in.jsonl",),
    ),
    Case(
        "jsonl-invalid-json",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": INPUT_JOB,
            "data/in.jsonl": LINE % "a" + '{"custom_id": "b", "body": {"x": 1,}}\n',
        },
        ("data/in.jsonl:2:36: invalid JSON: Expecting property name enclosed in double quotes",),
    ),
    Case(
        "jsonl-line-not-object",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": INPUT_JOB,
            "data/in.jsonl": LINE % "a" + "\n" + '["custom_id", "b"]\n',
        },
        ("data/in.jsonl:3:1: each line must be a JSON object, not an array",),
    ),
    Case(
        "jsonl-missing-body",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": INPUT_JOB,
            "data/in.jsonl": '{"custom_id": "a", "messages": []}\n',
        },
        ("data/in.jsonl:1:1: body: missing required field",),
    ),
    Case(
        "jsonl-body-not-object",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": INPUT_JOB,
            "data/in.jsonl": '{"custom_id": "a", "body": "hi"}\n',
        },
        ("data/in.jsonl:1:1: body: must be a JSON object, not a string",),
    ),
    Case(
        "jsonl-custom-id-number",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": INPUT_JOB,
            "data/in.jsonl": '{"custom_id": 7, "body": {}}\n',
        },
        ("data/in.jsonl:1:1: custom_id: must be a string, not a number",),
    ),
    Case(
        "jsonl-duplicate-custom-id",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": INPUT_JOB,
            "data/in.jsonl": LINE % "a" + LINE % "b" + LINE % "a",
        },
        (
            "data/in.jsonl:3:1: custom_id: duplicate 'a' (first at line 1); custom_ids must be"
            " unique within a job",
        ),
    ),
    Case(
        "jsonl-duplicate-custom-id-across-files",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": "jobs:\n  ok:\n    inputs: [../data/in.jsonl, ../data/more.jsonl]\n",
            "data/in.jsonl": LINE % "a",
            "data/more.jsonl": LINE % "b" + LINE % "a",
        },
        (
            "data/more.jsonl:2:1: custom_id: duplicate 'a' (first at data/in.jsonl:1);"
            " custom_ids must be unique within a job",
        ),
    ),
    Case(
        "jsonl-not-utf8",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": INPUT_JOB,
            "data/in.jsonl": b'{"custom_id": "a", "body": {"q": "caf\xe9"}}\n',
        },
        ("data/in.jsonl:1:38: not valid UTF-8 (byte 0xe9)",),
    ),
    Case(
        "jsonl-empty",
        {"reconciler.yaml": CONFIG, "jobs/a.yaml": INPUT_JOB, "data/in.jsonl": ""},
        ("data/in.jsonl: is empty: expected one JSON request per line",),
    ),
    Case(
        "jsonl-nan",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": INPUT_JOB,
            "data/in.jsonl": '{"custom_id": "a", "body": {"temperature": NaN}}\n',
        },
        ("data/in.jsonl:1:1: invalid JSON: NaN is not valid JSON",),
    ),
    # -- hostile YAML ----------------------------------------------------------------------
    Case(
        "yaml-alias-bomb",
        {
            "reconciler.yaml": CONFIG,
            "jobs/a.yaml": "x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
            + "".join(f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]\n" for i in range(1, 9)),
        },
        (
            "jobs/a.yaml:5:5: aliases expand to more than 100,000 values (an alias bomb?);"
            " write the values out, or share them through defaults:",
        ),
    ),
    Case(
        "yaml-deep-nesting",
        {"reconciler.yaml": CONFIG, "jobs/a.yaml": "jobs: " + "[" * 200 + "]" * 200 + "\n"},
        ("jobs/a.yaml:1:70: nesting deeper than 64 levels is not supported",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_config_is_reported_at_its_line(workdir: Workdir, case: Case) -> None:
    workdir.write(case.files)
    result = workdir.validate()
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    n = len(case.expected)
    summary = f"Error: {n} problem{'s' if n != 1 else ''} found; the configuration is not valid."
    assert result.stderr.splitlines() == [*case.expected, summary], result.stderr


def test_corpus_is_large() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


def test_every_problem_is_reported_at_once_in_order(workdir: Workdir) -> None:
    """Problems in several files, of several kinds, all in one run, sorted by position."""
    workdir.write(
        {
            "reconciler.yaml": CONFIG + "  timeout_hours: 500\n",
            "jobs/a.yaml": "jobs:\n  b-job:\n    modle: x\n" + REQ,
            "jobs/b.yaml": "jobs:\n  c-job:\n    inputs: [../data/in.jsonl]\n",
            "data/in.jsonl": '{"body": {}}\n[]\n{"custom_id": 1, "body": {}}\n',
        }
    )
    result = workdir.validate()
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "data/in.jsonl:2:1: each line must be a JSON object, not an array",
        "data/in.jsonl:3:1: custom_id: must be a string, not a number",
        "jobs/a.yaml:3:5: jobs.b-job.modle: unknown field (did you mean 'model'?)",
        "reconciler.yaml:6:18: defaults.timeout_hours: must be at most 168 (got 500)",
        "Error: 4 problems found; the configuration is not valid.",
    ]


def test_main_entry_prints_problems_then_error_summary(
    workdir: Workdir, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the console entry point: problem lines, then one ``Error:`` line, exit 1."""
    from reconciler.cli import main

    workdir.write({"reconciler.yaml": "version: 1\nworkspace: ws\nserver: ftp://x\n"})
    with pytest.raises(SystemExit) as exit_info:
        main(["validate"])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "reconciler.yaml:3:9: server: 'ftp://x': must be 'local' or an http(s) URL such as"
        " https://api.mistral.ai",
        "Error: 1 problem found; the configuration is not valid.",
    ]


@pytest.mark.parametrize("command", [["validate"], ["plan"], ["status"]])
def test_a_config_file_outside_the_root_is_never_read_nor_echoed(
    workdir: Workdir, command: list[str]
) -> None:
    """A pull request makes reconciler.yaml a link to a file of the CI runner: every command
    refuses it before reading, and nothing of that file shows in the output."""
    outside = workdir.root.parent / "runner-secrets.yaml"
    outside.write_text("version: 1\nworkspace: hunter2-leaked\naws_secret_key: AKIAHUNTER2\n")
    workdir.write({"reconciler.yaml": ("symlink", str(outside))})
    result = workdir.cli("-C", ".", *command)
    assert result.exit_code == 1, result.output
    assert "reconciler.yaml: leads outside the config root through a symlink" in result.stderr
    assert "hunter2" not in result.output and "AKIA" not in result.output
