"""The JSON Schemas: valid, consistent with reconciler.api, printable, and the examples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from config.helpers import Workdir
from reconciler import api, tags
from reconciler.config.loader import load
from reconciler.config.prompts import iter_request_lines
from reconciler.config.schema import load_schema, schema_text

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


@pytest.mark.parametrize("kind", ["config", "jobs"])
def test_schema_is_valid_draft_2020_12_for_editors(kind: str) -> None:
    schema = load_schema(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] and schema["description"]
    assert schema["additionalProperties"] is False
    # The top-level schemas/ folder editors point at is the package's own folder.
    assert (REPO / "schemas" / f"{kind}.schema.json").read_text() == schema_text(kind)


def test_job_schema_matches_the_api_constants() -> None:
    job = load_schema("jobs")["$defs"]["job"]
    props = job["properties"]
    assert tuple(props["endpoint"]["enum"]) == api.ENDPOINTS
    assert props["timeout_hours"]["minimum"] == api.TIMEOUT_HOURS_MIN
    assert props["timeout_hours"]["maximum"] == api.TIMEOUT_HOURS_MAX
    assert props["timeout_hours"]["default"] == api.TIMEOUT_HOURS_DEFAULT
    assert props["requests"]["maxItems"] == api.MAX_INLINE_REQUESTS
    assert props["max_attempts"] == {**props["max_attempts"], "minimum": 1, "default": 1}
    assert props["on_change"]["enum"] == ["replace", "wait"]
    assert job["additionalProperties"] is False
    metadata = load_schema("jobs")["$defs"]["metadata"]
    names = metadata["propertyNames"]
    assert (names["minLength"], names["maxLength"]) == (
        api.METADATA_KEY_MIN,
        api.METADATA_KEY_MAX,
    )
    values = metadata["additionalProperties"]
    assert (values["minLength"], values["maxLength"]) == (
        api.METADATA_VALUE_MIN,
        api.METADATA_VALUE_MAX,
    )
    assert names["allOf"][0]["not"]["pattern"] == "^" + tags.PREFIX.replace(".", "\\.")


def test_config_schema_defaults_match_the_model() -> None:
    from reconciler.config.loader import DEFAULT_INCLUDE
    from reconciler.config.model import DEFAULT_SERVER, Safety

    props = load_schema("config")["properties"]
    assert props["server"]["default"] == DEFAULT_SERVER == api.DEFAULT_SERVER_URL
    assert props["include"]["default"] == list(DEFAULT_INCLUDE)
    assert props["safety"]["properties"]["max_destroy"]["default"] == Safety().max_destroy
    assert props["defaults"]["$ref"] == "jobs.schema.json#/$defs/job"


def _validator(kind: str) -> Any:
    from reconciler.config.schema import _validator as validator

    return validator(kind)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a", True),
        ("cheese-eval_v2.1", True),
        ("0", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("", False),
        ("Cheese", False),
        ("with space", False),
        ("slash/name", False),
        ("émile", False),
    ],
)
def test_job_name_rule(name: str, ok: bool) -> None:
    doc: dict[str, Any] = {"jobs": {name: {}}}
    assert (list(_validator("jobs").iter_errors(doc)) == []) is ok


@pytest.mark.parametrize(
    ("workspace", "ok"),
    [
        ("research-evals", True),
        ("acme/support.bots_2", True),
        ("a", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("-leading-dash", False),
        ("/leading-slash", False),
        ("Upper", False),
        ("", False),
    ],
)
def test_workspace_rule(workspace: str, ok: bool) -> None:
    doc = {"version": 1, "workspace": workspace}
    assert (list(_validator("config").iter_errors(doc)) == []) is ok


@pytest.mark.parametrize(
    ("server", "ok"),
    [
        ("local", True),
        ("https://api.mistral.ai", True),
        ("http://127.0.0.1:8765", True),
        ("https://proxy.example.com/mistral/", True),
        ("api.mistral.ai", False),
        ("ftp://x", False),
        ("https://", False),
        ("local ", False),
    ],
)
def test_server_rule(server: str, ok: bool) -> None:
    doc = {"version": 1, "workspace": "w", "server": server}
    assert (list(_validator("config").iter_errors(doc)) == []) is ok


@pytest.mark.parametrize("kind", ["config", "jobs"])
def test_schema_command_prints_the_schema(workdir: Workdir, kind: str) -> None:
    result = workdir.cli("schema", kind)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == load_schema(kind)
    assert result.stdout == schema_text(kind)


def test_schema_command_defaults_to_config(workdir: Workdir) -> None:
    assert json.loads(workdir.cli("schema").stdout) == load_schema("config")


def test_schema_command_plan(workdir: Workdir) -> None:
    result = workdir.cli("schema", "plan")
    text = schema_text("plan")
    if text is None:  # written by the plan renderer's part of the package
        assert result.exit_code == 1
    else:
        assert result.exit_code == 0
        assert json.loads(result.stdout) == json.loads(text)


def test_schema_command_rejects_unknown_kinds(workdir: Workdir) -> None:
    result = workdir.cli("schema", "nope")
    assert result.exit_code == 1  # a usage error: never 2, which means "changes"
    assert "'nope' is not one of" in result.stderr


# -- examples/ ---------------------------------------------------------------------------

# The field each endpoint's request body cannot do without (Mistral's API reference).
REQUIRED_BODY_FIELD = {
    "/v1/chat/completions": "messages",
    "/v1/embeddings": "input",
    "/v1/moderations": "input",
    "/v1/ocr": "document",
}


def test_examples_validate(workdir: Workdir, tmp_path: Path) -> None:
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root)
    result = workdir.cli("-C", str(root), "validate")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Configuration is valid: 10 jobs (4 from matrices) in 6 files"
        " (workspace support-analytics).\n"
    )


def test_examples_cover_every_input_source_and_body_shape() -> None:
    state = load(EXAMPLES)
    assert state.server == "local"
    jobs = state.by_name()
    assert 4 <= len(jobs) <= 12
    assert {j.endpoint for j in jobs.values()} >= set(REQUIRED_BODY_FIELD)
    assert any(j.inputs for j in jobs.values())
    assert any(j.requests_json for j in jobs.values())
    assert any(j.prompts for j in jobs.values())
    for job in jobs.values():
        field = REQUIRED_BODY_FIELD[job.endpoint]
        bodies = [r["body"] for r in job.requests or []]
        if job.prompts is not None:
            bodies += [
                json.loads(line)["body"] for line in iter_request_lines(EXAMPLES, job.prompts)
            ]
        for local in job.inputs:
            with (EXAMPLES / local.path).open() as fh:
                bodies += [json.loads(line)["body"] for line in fh if line.strip()]
        assert bodies, job.name
        for body in bodies:
            assert field in body, (job.name, body)
            assert "model" not in body
            if field == "messages":
                assert body["messages"] and all(m["role"] for m in body["messages"])
            if field == "document":
                assert body["document"]["type"] in ("document_url", "image_url")


def test_examples_point_editors_at_the_schemas() -> None:
    config = (EXAMPLES / "reconciler.yaml").read_text().splitlines()[0]
    assert config == "# yaml-language-server: $schema=../schemas/config.schema.json"
    assert (EXAMPLES / "../schemas/config.schema.json").is_file()
    for job_file in sorted((EXAMPLES / "jobs").glob("*.yaml")):
        first = job_file.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../../schemas/jobs.schema.json"
