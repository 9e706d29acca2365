"""Facts of the Mistral Batch Jobs and Files API wire contract, shared by every layer.

This is the only module the emulator imports from the rest of the package: it holds
constants, never behaviour, so that the emulator stays an independent implementation of
the contract (see ``../shared/mistral-api/NOTES.md``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

DEFAULT_SERVER_URL: Final = "https://api.mistral.ai"

JOBS_PATH: Final = "/v1/batch/jobs"
FILES_PATH: Final = "/v1/files"
MODELS_PATH: Final = "/v1/models"

ENDPOINTS: Final = (
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/fim/completions",
    "/v1/moderations",
    "/v1/chat/moderations",
    "/v1/ocr",
    "/v1/classifications",
    "/v1/chat/classifications",
    "/v1/conversations",
    "/v1/audio/transcriptions",
)


class Status(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEOUT_EXCEEDED = "TIMEOUT_EXCEEDED"
    CANCELLATION_REQUESTED = "CANCELLATION_REQUESTED"
    CANCELLED = "CANCELLED"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


ACTIVE_STATUSES: Final = frozenset({Status.QUEUED, Status.RUNNING, Status.CANCELLATION_REQUESTED})
TERMINAL_STATUSES: Final = frozenset(
    {Status.SUCCESS, Status.FAILED, Status.TIMEOUT_EXCEEDED, Status.CANCELLED}
)
# Terminal outcomes that did not produce results: candidates for a retry.
UNSUCCESSFUL_STATUSES: Final = frozenset({Status.FAILED, Status.TIMEOUT_EXCEEDED, Status.CANCELLED})

FILE_PURPOSES: Final = ("fine-tune", "batch", "ocr", "agentic_safety")  # the last: SDK 3.7
SAMPLE_TYPES: Final = ("pretrain", "instruct", "batch_request", "batch_result", "batch_error")
FILE_SOURCES: Final = ("upload", "repository", "mistral")

MAX_INLINE_REQUESTS: Final = 10_000
# Requests per job (docs: resources/known-limitations) and pending requests per workspace,
# in QUEUED/RUNNING jobs (docs: capabilities/batch FAQ), as of 2026-08: see NOTES.md.
MAX_REQUESTS_PER_JOB: Final = 100_000
MAX_PENDING_REQUESTS: Final = 1_000_000
METADATA_KEY_MIN: Final = 1
METADATA_KEY_MAX: Final = 32
METADATA_VALUE_MIN: Final = 1
METADATA_VALUE_MAX: Final = 512
TIMEOUT_HOURS_MIN: Final = 1
TIMEOUT_HOURS_MAX: Final = 168
TIMEOUT_HOURS_DEFAULT: Final = 24
MAX_FILE_BYTES: Final = 512 * 1024 * 1024
# The API does not document a maximum page size; 100 is its default and what we request.
PAGE_SIZE: Final = 100
