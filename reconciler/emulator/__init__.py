"""A local, persistent emulator of Mistral's Batch Jobs and Files API.

An independent implementation of the wire contract in ``../shared/mistral-api/`` (it imports
nothing of the reconciler but :mod:`reconciler.api`), used three ways: in-process behind
:class:`InProcessTransport` (``server: local``), served over HTTP (``reconciler emulator
serve``), and by the test suite.

Tests and tools steer a running emulator (any process) through its database — the Python
methods of :class:`Emulator` — or over HTTP with the admin API, which is neither
authenticated, faulted nor logged: ``GET/PUT /_emulator/faults`` (PUT replaces the whole
set), ``GET/DELETE /_emulator/requests`` (the request log), ``GET/POST /_emulator/clock``
(``{"advance": seconds}``) and ``GET/PUT /_emulator/settings`` (``speed``, ``hour_length``).

Decisions where the contract is silent (the strict choice, so clients cope):

- ``GET /v1/models`` serves Mistral's public catalogue (:mod:`.catalogue`: its source and
  date are there), one card per API name as the real API lists them; ``GET /v1/models/{id}``
  one card. A create whose ``model`` is not in it, or does not serve the job's ``endpoint``,
  is a 400 ``{"type": "invalid_model", "code": "1500", "message": "Invalid model: ..."}``,
  what the real API answers an unknown model (a semantic refusal after the body's structure
  passed, so not a 422; structural problems still come first, as 422s). Fine-tuned ids
  (``ft:...``) pass for any endpoint, and ``/v1/classifications`` needs one (no base model
  classifies); agent jobs are not checked. The emulator hosts no fine-tunes: ``GET`` or
  ``DELETE /v1/models/ft:...`` is a 404, deleting a base model a 400.
- Request faults (:mod:`.outcomes`): ``fail_requests`` / ``fail_requests_permanent`` (the
  ``--fail-requests*`` flags) fail a fraction of a job's requests with 429/500 (transient)
  or 400 (permanent) lines in its error file. Attempts are counted per database: every job
  created with a request (same ``custom_id``, same canonical body) is one more attempt of
  it, whether or not the job runs to the end; transient draws depend on the attempt, so a
  retry can succeed; permanent ones do not. Decisions are fixed at create time.
- Limits (``max_requests_per_job``, default 100,000; ``max_pending_requests``, default
  1,000,000, counting the ``total_requests`` of every QUEUED or RUNNING job of any user):
  a create beyond one is a 400 ``invalid_request_error`` (not 429: waiting in a retry loop
  would not help a job that is too large, and capacity is the caller's to plan), checked in
  the create's own transaction, so racing creates cannot both pass.
- Result bodies name the model as the job did (an alias stays an alias), as the docs' batch
  results show; agent jobs name ``mistral-medium-latest``. Line ids are
  ``batch-<first 8 hex of the job id>-<1-based position>-<uuid>``. ``usage`` has every key
  of the SDK's ``UsageInfo`` (``prompt_audio_seconds``, ``service_tier`` null where they do
  not apply); transcriptions carry ``finish_reason: null`` as in the docs' example. Token
  counts follow the rule in :mod:`.synth` (``ceil(characters / 4)``, 4 per chat message).
- ``GET /v1/batch/jobs/{id}`` of a finished job created with inline ``requests`` returns
  ``outputs`` without ``inline=true`` (the SDK's own inline example iterates
  ``job.outputs`` after a plain ``get``); jobs of input files only with ``inline=true``;
  ``inline=false`` never; listings never.
- Hostile input is a 4xx in the API's shapes: JSON is parsed strictly (no NaN/Infinity, no
  number out of float range, no integer beyond 4300 digits, nesting <= 100, no lone
  surrogate), input-file lines are at most 64 MiB, bodies other than creates (128 MiB) and
  uploads (512 MiB) at most 1 MiB, ``page`` <= 1,000,000, upload ``expiry`` <= 87,600 hours,
  signed-URL ``expiry`` 1..168 (the spec). Admin settings are finite and bounded (latency
  <= 600 s, speed 1e-6..1e6, clock steps <= 100 years...); a setting outside is a 400.

- Unknown or inaccessible ``input_files`` fail the create with 422 (``loc`` names the
  file's index), reported with every other problem of the body, rather than a 404.
- Malformed path ids (not a UUID) get FastAPI's 422 ``uuid_parsing``; unknown ids a 404
  in the 400 error shape.
- Cancelling a finished job and deleting an active one are 400s; cancelling a job already in
  CANCELLATION_REQUESTED returns it unchanged. Deleting a job keeps its files; a deleted
  file is gone (404), jobs that used it keep their own (hard-linked) copy of its bytes.
- ``created_after`` is exclusive. ``page_size`` is 1..1000. A repeated metadata filter
  must match every value (so it matches nothing). Blank lines in input JSONL are skipped;
  a request without ``custom_id`` is reported under its 0-based index.
- ``GET /v1/batch/jobs/{id}?inline=true`` of a finished job gives every result line in
  ``outputs``: those of the output file, then those of the error file.
- The exploded metadata form cannot filter on keys named like a list parameter (``page``,
  ``model``...); the ``metadata=<json>`` form can.
- ``expiry`` on upload is in hours. Upload ``purpose`` defaults to ``fine-tune``;
  ``agentic_safety`` (SDK 3.7) is accepted besides the spec's three.
- ``GET /v1/files/{id}/url`` (the SDK's ``get_signed_url``) signs, with an HMAC secret kept
  in the database, a URL under ``/_emulator/blobs/{id}`` on the same host: like a blob
  store's, it downloads without a bearer token until ``expiry`` hours of emulated time
  have passed, and a forged or expired one is a 403.
- Timeouts count from creation: a job whose queue + run time exceeds ``timeout_hours`` x
  ``hour_length`` seconds ends TIMEOUT_EXCEEDED at that deadline with partial results.
- The ``rate_limit`` fault is a token bucket per process (shared by its threads), not per
  database: two processes serving one database each allow the full rate.
"""

from __future__ import annotations

from reconciler.emulator.app import DroppedResponse, Emulator, token_owner
from reconciler.emulator.clock import Clock, ManualClock, SystemClock
from reconciler.emulator.faults import Faults
from reconciler.emulator.server import ServedEmulator, serve
from reconciler.emulator.store import LoggedRequest, Settings
from reconciler.emulator.transport import LOCAL_BASE_URL, InProcessTransport, in_process_client

__all__ = [
    "LOCAL_BASE_URL",
    "Clock",
    "DroppedResponse",
    "Emulator",
    "Faults",
    "InProcessTransport",
    "LoggedRequest",
    "ManualClock",
    "ServedEmulator",
    "Settings",
    "SystemClock",
    "in_process_client",
    "serve",
    "token_owner",
]
