#!/usr/bin/env python3
"""The two things the CI recipes ask of GitHub or GitLab, with the standard library only.

    forge.py comment FILE     create the plan comment of this pull (merge) request, or
                              update it in place: the comment whose first line equals FILE's
                              first line (the hidden ``<!-- reconciler-plan: WORKSPACE -->``)
    forge.py fetch-plan DIR   on the default branch after a merge: find the pull (merge)
                              request the commit came from and download the plan saved by its
                              last plan job into DIR (plan.tfplan, tree, ...)

GitHub (GITHUB_ACTIONS=true): GITHUB_TOKEN (``pull-requests: write`` to comment;
``actions: read`` and ``pull-requests: read`` to fetch), GITHUB_REPOSITORY, GITHUB_SHA,
GITHUB_API_URL, the pull request number from PR_NUMBER or the event payload. Plans are the
artifacts ``reconciler-plan-<head sha>``: the head commit of the merged pull request is
found with ``GET /repos/{repo}/commits/{sha}/pulls``, which knows merge, squash and rebase
merges alike. Anyone whose workflow runs in this repository can upload an artifact of that
name (a fork's pull request runs the fork's workflow file; another workflow can too), so an
artifact is accepted only when the run that made it is this repository's own: its
repository and head repository are GITHUB_REPOSITORY, its event is ``pull_request``, its
head commit is the reviewed head, and its workflow file is the expected one
(RECONCILER_PLAN_WORKFLOW, by default this very workflow's file from GITHUB_WORKFLOW_REF).
The newest artifact that passes is taken; none passing is a refusal that says why each
was rejected.

GitLab (GITLAB_CI=true): GITLAB_API_TOKEN (a project access token with the ``api`` scope,
sent as PRIVATE-TOKEN), CI_API_V4_URL, CI_PROJECT_ID, CI_COMMIT_SHA, CI_MERGE_REQUEST_IID.
Plans are the artifacts of the job RECONCILER_PLAN_JOB (default ``reconciler-plan``) in
the merge request's newest pipeline for its reviewed head, which must have succeeded. The
merge request must come from a branch of this project (a fork's merge request runs the
fork's pipeline definition), and the pipeline must be a ``merge_request_event`` pipeline
of this project for that head commit.

Tokens go only in request headers, never in output. Exit codes: 0 done, 1 failed (the
message says why).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

MARKER_PREFIX = "<!-- reconciler-plan:"
ARTIFACT_PREFIX = os.environ.get("RECONCILER_ARTIFACT", "reconciler-plan")
PLAN_FILE = "plan.tfplan"
PAGE = 100
TIMEOUT = 60.0
TRIES = 4


class ForgeError(Exception):
    """Something the user must fix or know; printed as one line, exit 1."""


# -- HTTP -------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # redirects are followed by hand, without the token


_opener = urllib.request.build_opener(_NoRedirect)


class Api:
    """JSON over HTTPS with one auth header; GETs retried on 429/5xx and network errors."""

    def __init__(self, base: str, headers: Mapping[str, str]) -> None:
        self.base = base.rstrip("/")
        self.headers = dict(headers)

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> tuple[int, Mapping[str, str], bytes]:
        url = path if path.startswith(("http://", "https://")) else self.base + path
        data = None if body is None else json.dumps(body).encode()
        headers = {**self.headers, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(TRIES):
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with _opener.open(request, timeout=TIMEOUT) as response:
                    return response.status, dict(response.headers), response.read()
            except urllib.error.HTTPError as err:
                status, payload = err.code, err.read()
                if 300 <= status < 400:
                    return status, dict(err.headers), payload
                if method == "GET" and (status == 429 or status >= 500) and attempt < TRIES - 1:
                    time.sleep(2**attempt)
                    continue
                message = f"{method} {_shown(url)}: HTTP {status}: {_text(payload)}"
                raise ForgeError(message) from err
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                if method == "GET" and attempt < TRIES - 1:
                    time.sleep(2**attempt)
                    continue
                raise ForgeError(f"{method} {_shown(url)}: {err}") from err
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        status, _, payload = self.request(method, path, body)
        if 300 <= status < 400:
            raise ForgeError(f"{method} {path}: unexpected redirect ({status})")
        return json.loads(payload) if payload else None

    def pages(self, path: str) -> Iterator[Any]:
        """Every item of a paginated list (``per_page``/``page``, as both forges take)."""
        sep = "&" if "?" in path else "?"
        page = 1
        while True:
            items = self.json("GET", f"{path}{sep}per_page={PAGE}&page={page}")
            if not isinstance(items, list):
                raise ForgeError(f"GET {path}: expected a list")
            yield from items
            if len(items) < PAGE:
                return
            page += 1

    def download(self, path: str) -> bytes:
        """The bytes at ``path``, following a redirect to storage without the token."""
        status, headers, payload = self.request("GET", path)
        for _ in range(5):
            if not 300 <= status < 400:
                return payload
            location = headers.get("Location") or headers.get("location")
            if not location:
                raise ForgeError(f"GET {path}: redirect without a Location")
            try:
                with _opener.open(urllib.request.Request(location), timeout=TIMEOUT) as response:
                    status, headers, payload = (
                        response.status,
                        dict(response.headers),
                        response.read(),
                    )
            except urllib.error.HTTPError as err:
                if 300 <= err.code < 400:
                    status, headers, payload = err.code, dict(err.headers), err.read()
                    continue
                raise ForgeError(f"downloading {path}: HTTP {err.code}") from err
        raise ForgeError(f"GET {path}: too many redirects")


def _shown(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def _text(payload: bytes) -> str:
    return payload.decode("utf-8", "replace").strip()[:300]


def _env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ForgeError(f"{name} is not set")
    return value


# -- comments ---------------------------------------------------------------------------


def marker_of(body: str) -> str:
    first = body.split("\n", 1)[0].strip()
    if not (first.startswith(MARKER_PREFIX) and first.endswith("-->")):
        raise ForgeError(
            f"the comment must start with a '{MARKER_PREFIX} ... -->' line "
            "(reconciler plan --format markdown --marker writes it)"
        )
    return first


def _has_marker(body: object, marker: str) -> bool:
    return isinstance(body, str) and body.split("\n", 1)[0].strip() == marker


def comment(forge: str, body: str) -> str:
    """Create or update the comment; returns what was done, for the log."""
    marker = marker_of(body)
    if forge == "github":
        api, repo = _github()
        number = _pull_number()
        base = f"/repos/{repo}/issues"
        found = next(
            (c for c in api.pages(f"{base}/{number}/comments") if _has_marker(c["body"], marker)),
            None,
        )
        if found is not None:
            api.json("PATCH", f"{base}/comments/{found['id']}", {"body": body})
            return f"updated comment {found['id']} on pull request #{number}"
        made = api.json("POST", f"{base}/{number}/comments", {"body": body})
        return f"created comment {made['id']} on pull request #{number}"
    api, project = _gitlab()
    iid = _env("CI_MERGE_REQUEST_IID")
    base = f"/projects/{project}/merge_requests/{iid}/notes"
    found = next(
        (
            n
            for n in api.pages(f"{base}?sort=asc&order_by=created_at")
            if not n.get("system") and _has_marker(n["body"], marker)
        ),
        None,
    )
    if found is not None:
        api.json("PUT", f"{base}/{found['id']}", {"body": body})
        return f"updated note {found['id']} on merge request !{iid}"
    made = api.json("POST", base, {"body": body})
    return f"created note {made['id']} on merge request !{iid}"


# -- plans ------------------------------------------------------------------------------


def fetch_plan(forge: str, dest: Path) -> str:
    """Download the plan the merged pull (merge) request was last planned with."""
    archive, source = _github_plan() if forge == "github" else _gitlab_plan()
    _extract(archive, dest)
    return f"fetched the plan of {source} into {dest}"


def _github_plan() -> tuple[bytes, str]:
    api, repo = _github()
    sha = _env("GITHUB_SHA")
    workflow = _expected_workflow()
    pulls = api.json("GET", f"/repos/{repo}/commits/{sha}/pulls")
    merged = [p for p in pulls or [] if p.get("merged_at")]
    # The pull request this very commit merged, if the API names several.
    merged.sort(key=lambda p: p.get("merge_commit_sha") != sha)
    if not merged:
        raise ForgeError(
            f"commit {sha[:12]} did not come from a merged pull request: there is no reviewed "
            "plan to apply. Changes reach the default branch through pull requests only."
        )
    pull = merged[0]
    head = pull["head"]["sha"]
    name = f"{ARTIFACT_PREFIX}-{head}"
    listing = api.json("GET", f"/repos/{repo}/actions/artifacts?name={name}&per_page={PAGE}")
    artifacts = [
        a for a in listing.get("artifacts", []) if not a.get("expired") and a.get("name") == name
    ]
    if not artifacts:
        raise ForgeError(
            f"no artifact {name}: the last plan of pull request #{pull['number']} (head "
            f"{head[:12]}) failed, was blocked, or expired. Nothing was applied."
        )
    trusted = []
    rejected = []
    for artifact in artifacts:
        why = _untrusted_github_artifact(api, repo, head, workflow, artifact)
        if why is None:
            trusted.append(artifact)
        else:
            rejected.append(f"artifact {artifact.get('id')}: {why}")
    if not trusted:
        raise ForgeError(
            f"no artifact {name} comes from this repository's own pull_request run of "
            f"{workflow} for head {head[:12]}, so none can be trusted: "
            + "; ".join(rejected)
            + ". Nothing was applied."
        )
    newest = max(trusted, key=lambda a: (a.get("created_at") or "", a["id"]))
    archive = api.download(f"/repos/{repo}/actions/artifacts/{newest['id']}/zip")
    run = (newest.get("workflow_run") or {}).get("id")
    return archive, f"pull request #{pull['number']} (head {head[:12]}, run {run})"


def _expected_workflow() -> str:
    """The workflow file whose pull_request runs make plans: RECONCILER_PLAN_WORKFLOW, or
    the file of the workflow running now (the recipe plans and applies in one file)."""
    given = os.environ.get("RECONCILER_PLAN_WORKFLOW", "").strip()
    if given:
        return given
    ref = os.environ.get("GITHUB_WORKFLOW_REF", "").strip()  # owner/repo/PATH@REF
    repo = os.environ.get("GITHUB_REPOSITORY", "").strip()
    path = ref.split("@", 1)[0]
    if repo and path.startswith(repo + "/"):
        return path[len(repo) + 1 :]
    raise ForgeError(
        "cannot tell which workflow makes the plans: GITHUB_WORKFLOW_REF is not set; set "
        "RECONCILER_PLAN_WORKFLOW (e.g. .github/workflows/reconciler.yml)"
    )


def _untrusted_github_artifact(
    api: Api, repo: str, head: str, workflow: str, artifact: Mapping[str, Any]
) -> str | None:
    """Why the run that uploaded ``artifact`` is not this repository's own pull_request run
    of ``workflow`` for ``head``; None when it is. Missing evidence is a reason too."""
    made_by = artifact.get("workflow_run") or {}
    run_id = made_by.get("id")
    if not isinstance(run_id, int):
        return "the artifact names no workflow run"
    if made_by.get("head_sha") != head:
        return f"made by run {run_id} for another commit"
    try:
        run = api.json("GET", f"/repos/{repo}/actions/runs/{run_id}")
    except ForgeError as err:
        return f"run {run_id} cannot be read ({err})"
    if not isinstance(run, dict):
        return f"run {run_id} cannot be read"
    owner = (run.get("repository") or {}).get("full_name")
    source = (run.get("head_repository") or {}).get("full_name")
    path = str(run.get("path") or "").split("@", 1)[0]
    if owner != repo:
        return f"run {run_id} belongs to {owner or 'an unknown repository'}"
    if source != repo:
        return f"run {run_id} ran the code of {source or 'an unknown repository'} (a fork)"
    if run.get("event") != "pull_request":
        return f"run {run_id} was triggered by {run.get('event') or 'an unknown event'}"
    if path != workflow:
        return f"run {run_id} is of workflow {path or '(unknown)'}, not {workflow}"
    if run.get("head_sha") != head:
        return f"run {run_id} ran commit {str(run.get('head_sha'))[:12]}"
    return None


def _gitlab_plan() -> tuple[bytes, str]:
    api, project = _gitlab()
    sha = _env("CI_COMMIT_SHA")
    job_name = os.environ.get("RECONCILER_PLAN_JOB", "reconciler-plan")
    mrs = api.json("GET", f"/projects/{project}/repository/commits/{sha}/merge_requests")
    merged = [m for m in mrs or [] if m.get("state") == "merged"]
    merged.sort(key=lambda m: sha not in (m.get("merge_commit_sha"), m.get("squash_commit_sha")))
    if not merged:
        raise ForgeError(
            f"commit {sha[:12]} did not come from a merged merge request: there is no "
            "reviewed plan to apply. Changes reach the default branch through merge requests "
            "only."
        )
    mr = merged[0]
    iid = mr["iid"]
    project_id = str(_env("CI_PROJECT_ID"))
    source, target = str(mr.get("source_project_id")), str(mr.get("target_project_id"))
    if source != project_id or target != project_id:
        raise ForgeError(
            f"merge request !{iid} comes from project {source}, not from this project "
            f"({project_id}): its pipeline ran that project's definition, so its plan cannot "
            "be trusted. Nothing was applied; plan main by hand (Run pipeline) to apply it."
        )
    head = mr.get("sha")
    if not isinstance(head, str) or not head:
        raise ForgeError(f"merge request !{iid} names no head commit: nothing can be applied")
    pipelines = api.json("GET", f"/projects/{project}/merge_requests/{iid}/pipelines")
    ours = [
        p
        for p in pipelines or []
        if p.get("sha") == head
        and str(p.get("project_id")) == project_id
        and p.get("source") == "merge_request_event"
    ]
    if not ours:
        raise ForgeError(
            f"merge request !{iid} has no merge request pipeline of this project for its "
            f"head {head[:12]}: nothing reviewed was planned. Nothing was applied."
        )
    newest = max(ours, key=lambda p: p["id"])
    if newest.get("status") != "success":
        raise ForgeError(
            f"the newest pipeline of merge request !{iid} ({newest['id']}) is "
            f"{newest.get('status')}, not success: its plan cannot be applied"
        )
    jobs = api.json("GET", f"/projects/{project}/pipelines/{newest['id']}/jobs?per_page={PAGE}")
    planned = [j for j in jobs if j.get("name") == job_name and j.get("status") == "success"]
    if not planned:
        raise ForgeError(f"pipeline {newest['id']} has no successful job {job_name}")
    job = max(planned, key=lambda j: j["id"])
    archive = api.download(f"/projects/{project}/jobs/{job['id']}/artifacts")
    return archive, f"merge request !{iid} (head {head[:12]}, pipeline {newest['id']})"


def _extract(archive: bytes, dest: Path) -> None:
    """The files beside plan.tfplan in the archive, by base name (no path from the zip)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile as err:
        raise ForgeError("the plan artifact is not a zip archive") from err
    with zf:
        names = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == PLAN_FILE]
        if len(names) != 1:
            raise ForgeError(f"the plan artifact holds {len(names)} {PLAN_FILE} files, not 1")
        folder = names[0][: -len(PLAN_FILE)]
        dest.mkdir(parents=True, exist_ok=True)
        for info in zf.infolist():
            rest = info.filename[len(folder) :]
            if info.is_dir() or not info.filename.startswith(folder) or "/" in rest:
                continue
            (dest / rest).write_bytes(zf.read(info))


# -- forges -----------------------------------------------------------------------------


def _github() -> tuple[Api, str]:
    token = _env("GITHUB_TOKEN")
    api = Api(
        os.environ.get("GITHUB_API_URL", "https://api.github.com"),
        {
            "Authorization": f"Bearer {token}",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "reconciler-ci",
        },
    )
    return api, _env("GITHUB_REPOSITORY")


def _pull_number() -> str:
    number = os.environ.get("PR_NUMBER", "").strip()
    if number:
        return number
    event_path = os.environ.get("GITHUB_EVENT_PATH", "")
    if event_path:
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
        pull = event.get("pull_request") or {}
        if "number" in pull:
            return str(pull["number"])
    raise ForgeError("no pull request number: set PR_NUMBER, or run on a pull_request event")


def _gitlab() -> tuple[Api, str]:
    token = _env("GITLAB_API_TOKEN")
    api = Api(_env("CI_API_V4_URL"), {"PRIVATE-TOKEN": token, "User-Agent": "reconciler-ci"})
    return api, urllib.parse.quote(_env("CI_PROJECT_ID"), safe="")


def detect() -> str:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        return "github"
    if os.environ.get("GITLAB_CI") == "true":
        return "gitlab"
    raise ForgeError("not on GitHub Actions or GitLab CI: pass --forge github|gitlab")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    parser.add_argument("--forge", choices=["github", "gitlab"], default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("comment", help="create or update the plan comment").add_argument("file")
    sub.add_parser("fetch-plan", help="download the merged request's plan").add_argument("dest")
    args = parser.parse_args(argv)
    try:
        forge = args.forge or detect()
        if args.command == "comment":
            body = Path(args.file).read_text(encoding="utf-8")
            print(comment(forge, body))
        else:
            print(fetch_plan(forge, Path(args.dest)))
    except (ForgeError, OSError, ValueError, KeyError) as err:
        print(f"forge.py: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
