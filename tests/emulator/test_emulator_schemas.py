"""Every kind of response body validates against the shared OpenAPI component schemas.

Schemas are closed for the test (``additionalProperties: false`` wherever an object lists
its properties) so an invented field fails too, and formats (uuid) are checked.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from emulator_support import (
    FILES,
    JOBS,
    bad_chat_request,
    chat_request,
    create_job,
    jsonl,
    upload,
)
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from reconciler.emulator import ManualClock

# A copy of ../shared/mistral-api/openapi-batch-files.yaml, so the suite is self-contained;
# test_the_spec_copy_is_current keeps it honest wherever the shared folder exists.
SPEC_PATH = Path(__file__).with_name("openapi-batch-files.yaml")
SHARED_SPEC = Path(__file__).resolve().parents[3] / "shared/mistral-api/openapi-batch-files.yaml"
SPEC_URI = "urn:mistral:openapi"

# Shapes the spec file does not define (NOTES.md gives them).
EXTRA_SCHEMAS: dict[str, Any] = {
    "DeleteBatchJobOut": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "object": {"const": "batch"},
            "deleted": {"const": True},
        },
        "required": ["id", "object", "deleted"],
    },
    "HTTPValidationError": {
        "type": "object",
        "properties": {
            "detail": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                        "msg": {"type": "string"},
                        "input": {},
                        "ctx": {"type": "object"},
                    },
                    "required": ["type", "loc", "msg", "input"],
                },
            }
        },
        "required": ["detail"],
    },
    "ErrorOut": {
        "type": "object",
        "properties": {
            "object": {"const": "error"},
            "message": {"type": "string"},
            "type": {"type": "string"},
            "param": {"type": "null"},
            "code": {"type": "null"},
        },
        "required": ["object", "message", "type", "param", "code"],
    },
    "UnauthorizedOut": {
        "type": "object",
        "properties": {"message": {"const": "Unauthorized"}, "request_id": {"type": "string"}},
        "required": ["message", "request_id"],
    },
}


def _closed(node: Any) -> Any:
    if isinstance(node, dict):
        out = {key: _closed(value) for key, value in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_closed(item) for item in node]
    return node


@pytest.fixture(scope="module")
def validators() -> dict[str, Draft202012Validator]:
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    spec = copy.deepcopy(spec)
    spec["components"]["schemas"].update(EXTRA_SCHEMAS)
    spec["components"]["schemas"] = _closed(spec["components"]["schemas"])
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return {
        name: Draft202012Validator(
            {"$ref": f"{SPEC_URI}#/components/schemas/{name}"},
            registry=registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        for name in spec["components"]["schemas"]
    }


def check(validators: dict[str, Draft202012Validator], schema: str, body: Any) -> None:
    validators[schema].validate(body)


def test_the_spec_copy_is_current() -> None:
    if not SHARED_SPEC.exists():
        pytest.skip("../shared/mistral-api is not beside this checkout")
    assert SPEC_PATH.read_bytes() == SHARED_SPEC.read_bytes()


def test_the_closed_schemas_can_fail(validators: dict[str, Draft202012Validator]) -> None:
    job = {
        "id": "x",
        "input_files": [],
        "endpoint": "/v1/chat/completions",
        "errors": [],
        "status": "QUEUED",
        "created_at": 1,
        "total_requests": 1,
        "completed_requests": 0,
        "succeeded_requests": 0,
        "failed_requests": 0,
    }
    check(validators, "BatchJobOut", job)
    for broken in (
        {**job, "invented": 1},
        {**job, "completed_requests": None},
        {**job, "status": "DONE"},
        {**job, "output_file": "not-a-uuid"},
    ):
        with pytest.raises(ValidationError):
            check(validators, "BatchJobOut", broken)


def test_every_response_kind_validates(
    validators: dict[str, Draft202012Validator],
    emulator_client: httpx.Client,
    emulator_clock: ManualClock,
) -> None:
    seen: set[str] = set()

    def ok(schema: str, response: httpx.Response) -> Any:
        assert response.status_code == 200, response.text
        body = response.json()
        check(validators, schema, body)
        seen.add(schema)
        return body

    uploaded = emulator_client.post(
        FILES,
        files={"file": ("in.jsonl", jsonl([chat_request("0"), bad_chat_request("1")]))},
        data={"purpose": "batch", "expiry": "48", "visibility": "user"},
    )
    file = ok("UploadFileOut", uploaded)
    ok("RetrieveFileOut", emulator_client.get(f"{FILES}/{file['id']}"))
    ok("ListFilesOut", emulator_client.get(FILES))
    ok("ListFilesOut", emulator_client.get(FILES, params={"include_total": "false"}))
    signed = ok("FileSignedURL", emulator_client.get(f"{FILES}/{file['id']}/url"))
    assert emulator_client.get(signed["url"], headers={"Authorization": ""}).status_code == 200

    created = ok(
        "BatchJobOut",
        emulator_client.post(
            JOBS,
            json={
                "endpoint": "/v1/chat/completions",
                "model": "mistral-small-latest",
                "input_files": [file["id"]],
                "metadata": {"team": "a"},
            },
        ),
    )
    inline = create_job(emulator_client, requests=[chat_request("0")], metadata=None)
    check(validators, "BatchJobOut", inline)
    ok("BatchJobsOut", emulator_client.get(JOBS))
    emulator_clock.advance(1.01)  # running
    ok("BatchJobOut", emulator_client.get(f"{JOBS}/{created['id']}"))
    ok("BatchJobOut", emulator_client.post(f"{JOBS}/{inline['id']}/cancel"))
    emulator_clock.advance(5)  # finished, results on both sides
    done = ok(
        "BatchJobOut", emulator_client.get(f"{JOBS}/{created['id']}", params={"inline": "true"})
    )
    assert done["outputs"] and done["output_file"] and done["error_file"]
    result = ok("RetrieveFileOut", emulator_client.get(f"{FILES}/{done['output_file']}"))
    assert result["sample_type"] == "batch_result"
    listed = ok("ListFilesOut", emulator_client.get(FILES, params={"source": "mistral"}))
    assert len(listed["data"]) == 2
    ok("BatchJobsOut", emulator_client.get(JOBS, params={"status": "SUCCESS"}))
    ok("DeleteBatchJobOut", emulator_client.delete(f"{JOBS}/{created['id']}"))
    ok("DeleteFileOut", emulator_client.delete(f"{FILES}/{file['id']}"))

    errors = {
        "HTTPValidationError": emulator_client.post(JOBS, json={}),
        "ErrorOut": emulator_client.get(f"{JOBS}/{upload(emulator_client, b'{}')['id']}"),
        "UnauthorizedOut": emulator_client.get(JOBS, headers={"Authorization": ""}),
    }
    for schema, response in errors.items():
        assert response.status_code >= 400
        check(validators, schema, response.json())
        seen.add(schema)
    assert seen == {
        "UploadFileOut",
        "FileSignedURL",
        "RetrieveFileOut",
        "ListFilesOut",
        "BatchJobOut",
        "BatchJobsOut",
        "DeleteBatchJobOut",
        "DeleteFileOut",
        "HTTPValidationError",
        "ErrorOut",
        "UnauthorizedOut",
    }


def test_agent_jobs_and_every_endpoint_validate(
    validators: dict[str, Draft202012Validator], emulator_client: httpx.Client
) -> None:
    from reconciler.api import ENDPOINTS

    for endpoint in ENDPOINTS:
        job = create_job(
            emulator_client,
            endpoint=endpoint,
            model=None,
            agent_id="ag_1",
            requests=[{"body": {"input": "x"}}],
        )
        check(validators, "BatchJobOut", job)
        assert "model" in job  # always sent, even when null
