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
- ``expiry`` on upload is in hours. Upload ``purpose`` defaults to ``fine-tune``.
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
