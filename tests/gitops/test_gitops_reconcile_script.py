"""``examples/ci/reconcile.sh`` as the CI recipes run it, against ``reconciler emulator serve``.

The pull-request job runs ``reconcile.sh plan`` (validate, plan --out with the markdown
comment and its marker, show); the merge job runs ``reconcile.sh apply`` (same-config
check, apply PLANFILE, plan --detailed-exitcode). These tests run that file verbatim.
"""

from __future__ import annotations

import shutil

import httpx
from key_echo import KeyEcho, leaked

from gitops.support import SECRET_KEY, CiRepo, git

MARKER = "<!-- reconciler-plan: support-analytics -->"


def request_log(url: str) -> list[dict[str, object]]:
    data: list[dict[str, object]] = httpx.get(f"{url}/_emulator/requests", timeout=10).json()[
        "data"
    ]
    return data


def assert_no_secret(repo: CiRepo, *outputs: str) -> None:
    for text in outputs:
        assert SECRET_KEY not in text
    for path in repo.out.rglob("*"):
        if path.is_file():
            assert SECRET_KEY.encode() not in path.read_bytes(), path


def test_pull_request_plan_then_merge_apply(ci_repo: CiRepo) -> None:
    url = ci_repo.env["MISTRAL_SERVER_URL"]

    planned = ci_repo.reconcile("plan")
    assert planned.returncode == 0, planned.stderr
    steps = [line for line in planned.stderr.splitlines() if line.startswith("==> ")]
    assert steps == [
        "==> reconciler validate",
        "==> reconciler plan --out reconciler-plan/plan.tfplan --format markdown --marker",
        "==> reconciler show reconciler-plan/plan.tfplan",
    ]
    out = ci_repo.out
    assert (out / "exitcode").read_text().strip() == "2"  # changes: fine on a PR
    comment = (out / "comment.md").read_text()
    assert comment.splitlines()[0] == MARKER
    assert "**Plan: 10 to create, 0 to replace, 0 to cancel, 0 to delete.**" in comment
    # The log has the full text plan (the comment may be capped), also kept as plan.txt.
    assert "Plan: 10 to create, 0 to replace, 0 to cancel, 0 to delete." in planned.stdout
    summary, estimate = (out / "plan.txt").read_text().strip().splitlines()[-2:]
    assert summary == "Plan: 10 to create, 0 to replace, 0 to cancel, 0 to delete."
    assert estimate.startswith("Estimated cost of this plan: $")
    tree = (out / "tree").read_text().strip()
    assert len(tree) == 40
    # Planning on a pull request never writes: only GETs reached the server.
    assert {entry["method"] for entry in request_log(url)} == {"GET"}

    # main moved outside the config root before the merge: the plan still applies.
    (ci_repo.path / "README.md").write_text("changed outside the config root\n")
    ci_repo.commit("docs")

    applied = ci_repo.reconcile("apply")
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete: 10 created, 0 replaced, 0 cancelled, 0 deleted." in applied.stdout
    # main was planned again first, and that plan meant the reviewed one (its create ids
    # and the time it was made differ: compared by meaning, not bytes).
    steps = [line for line in applied.stderr.splitlines() if line.startswith("==> ")]
    assert steps == [
        "==> reconciler plan --out reconciler-plan/main.tfplan (main as it is now)",
        "==> reconciler apply reconciler-plan/plan.tfplan",
        "==> reconciler plan --detailed-exitcode",
    ]
    assert "The plan of main now is the reviewed plan." in applied.stderr
    assert (out / "after-apply-exitcode").read_text().strip() == "0"
    assert "No changes. Live jobs match the configuration." in applied.stdout
    creates = [
        e for e in request_log(url) if e["method"] == "POST" and e["path"] == "/v1/batch/jobs"
    ]
    assert len(creates) == 10

    # The same reviewed plan applied twice is stale: exit 4, a clear message, and no
    # request that writes.
    logged = len(request_log(url))
    again = ci_repo.reconcile("apply")
    assert again.returncode == 4, again.stderr
    assert "stale plan: planning main now gives another plan than the one reviewed" in again.stderr
    assert "  only in the reviewed plan: create 'greeting-smoke-test'" in again.stderr
    assert "Nothing was applied" in again.stderr
    assert "==> reconciler apply" not in again.stderr
    assert {e["method"] for e in request_log(url)[logged:]} == {"GET"}

    # A fresh plan on main now finds nothing to do.
    check = ci_repo.run("reconciler", "-C", "cfg", "plan", "--detailed-exitcode")
    assert check.returncode == 0, check.stdout + check.stderr
    assert_no_secret(ci_repo, planned.stdout, planned.stderr, applied.stdout, applied.stderr)

    # A pull request that declares no job at all would cancel or delete all six live jobs,
    # beyond safety.max_destroy (5): the plan job fails with the guard in the comment.
    (ci_repo.root / "reconciler.yaml").write_text(
        "version: 1\nworkspace: support-analytics\nserver: local\ninclude: []\n"
        "safety: {max_destroy: 5}\n"
    )
    blocked = ci_repo.reconcile("plan")
    assert blocked.returncode == 3, blocked.stdout + blocked.stderr
    assert (out / "exitcode").read_text().strip() == "3"
    assert not (out / "plan.tfplan").exists()  # nothing a merge could apply
    comment = (out / "comment.md").read_text()
    assert comment.splitlines()[0] == MARKER
    assert "**Apply is blocked by a safety guard** (exit code 3)" in comment
    assert "the plan is blocked by a safety guard (exit 3)" in blocked.stderr


def test_apply_refuses_a_plan_of_another_configuration(offline_repo: CiRepo) -> None:
    """Another merge changed the config root after the plan: exit 4 before any request
    (there is no server here: reconciler is not even started)."""
    out = offline_repo.out
    out.mkdir()
    (out / "plan.tfplan").write_text("{}")
    (out / "tree").write_text(git(offline_repo.path, "rev-parse", "HEAD:cfg") + "\n")
    jobs = offline_repo.root / "jobs" / "support.yaml"
    jobs.write_text(jobs.read_text().replace("timeout_hours: 12", "timeout_hours: 13"))
    offline_repo.commit("another pull request, merged first")

    refused = offline_repo.reconcile("apply")
    assert refused.returncode == 4, refused.stderr
    assert "stale plan: cfg on this commit differs from the configuration" in refused.stderr
    assert "Nothing was applied" in refused.stderr
    assert "==> reconciler apply" not in refused.stderr
    # On GitHub the message is an annotation that fails the job visibly.
    annotated = offline_repo.reconcile("apply", GITHUB_ACTIONS="true")
    assert annotated.returncode == 4
    assert annotated.stderr.startswith("::error title=reconciler::stale plan:")


def test_an_invalid_configuration_gets_a_comment_with_its_problems(offline_repo: CiRepo) -> None:
    jobs = offline_repo.root / "jobs" / "support.yaml"
    jobs.write_text(jobs.read_text().replace("timeout_hours:", "timeout_hourz:", 1))
    failed = offline_repo.reconcile("plan")
    assert failed.returncode == 1
    comment = (offline_repo.out / "comment.md").read_text()
    # Same marker as a good plan: the failure replaces the outdated plan comment.
    assert comment.splitlines()[0] == MARKER
    assert "**The plan failed** (exit code 1)" in comment
    assert "timeout_hourz" in comment and "jobs/support.yaml:" in comment
    assert not (offline_repo.out / "plan.tfplan").exists()


def test_a_missing_key_for_the_real_api_fails_before_any_request(offline_repo: CiRepo) -> None:
    """A fork's pull request gets no secrets: a clear error, not a request without a key."""
    config = offline_repo.root / "reconciler.yaml"
    config.write_text(config.read_text().replace("server: local ", "# server: default "))
    failed = offline_repo.reconcile("plan", MISTRAL_API_KEY="")
    assert failed.returncode == 1
    assert "MISTRAL_API_KEY" in (offline_repo.out / "comment.md").read_text()


def test_apply_without_a_fetched_plan_fails(offline_repo: CiRepo) -> None:
    failed = offline_repo.reconcile("apply")
    assert failed.returncode == 1
    assert "no saved plan at reconciler-plan/plan.tfplan" in failed.stderr


def test_usage(offline_repo: CiRepo) -> None:
    wrong = offline_repo.reconcile("deploy")
    assert wrong.returncode == 64 and "usage:" in wrong.stderr


def _reviewed_plan(repo: CiRepo) -> None:
    planned = repo.reconcile("plan")
    assert planned.returncode == 0, planned.stderr


def test_apply_refuses_a_plan_without_its_config_tree(ci_repo: CiRepo) -> None:
    """Missing evidence is a refusal, never a skipped check."""
    _reviewed_plan(ci_repo)
    (ci_repo.out / "tree").unlink()
    url = ci_repo.env["MISTRAL_SERVER_URL"]
    before = len(request_log(url))
    refused = ci_repo.reconcile("apply")
    assert refused.returncode == 1, refused.stderr
    assert "no config tree recorded with the plan (reconciler-plan/tree)" in refused.stderr
    assert "Nothing was applied" in refused.stderr
    assert request_log(url)[before:] == []
    # An empty one is no evidence either.
    (ci_repo.out / "tree").write_text("")
    assert ci_repo.reconcile("apply").returncode == 1


def test_apply_refuses_outside_a_git_checkout(ci_repo: CiRepo) -> None:
    _reviewed_plan(ci_repo)
    shutil.rmtree(ci_repo.path / ".git")
    url = ci_repo.env["MISTRAL_SERVER_URL"]
    before = len(request_log(url))
    refused = ci_repo.reconcile("apply")
    assert refused.returncode == 1, refused.stderr
    assert "cfg is not in a git checkout here" in refused.stderr
    assert request_log(url)[before:] == []


def test_apply_refuses_a_planted_plan_that_main_does_not_plan(ci_repo: CiRepo) -> None:
    """An artifact made from another configuration, carrying main's tree id: the tree check
    passes, but planning main gives another plan, so nothing is applied."""
    url = ci_repo.env["MISTRAL_SERVER_URL"]
    jobs = ci_repo.root / "jobs" / "planted.yaml"
    jobs.write_text(
        "jobs:\n  exfiltrate:\n    requests:\n"
        "      - {custom_id: '0', body: {messages: [{role: user, content: leak}]}}\n"
    )
    _reviewed_plan(ci_repo)  # records HEAD's tree: the planted job is not committed
    jobs.unlink()
    assert (ci_repo.out / "tree").read_text().strip() == git(ci_repo.path, "rev-parse", "HEAD:cfg")

    refused = ci_repo.reconcile("apply")
    assert refused.returncode == 4, refused.stderr
    assert "  only in the reviewed plan: create 'exfiltrate'" in refused.stderr
    assert "stale plan: planning main now gives another plan" in refused.stderr
    writes = [e for e in request_log(url) if e["method"] != "GET"]
    assert writes == []


def test_the_pr_comment_of_a_failed_plan_holds_no_part_of_the_key(offline_repo: CiRepo) -> None:
    """A server that echoes the key in a long error: the comment (the log's tail) and the
    log show no 8 characters of it, however the message was cut."""
    echo = KeyEcho(pad=285).start()
    try:
        failed = offline_repo.reconcile("plan", MISTRAL_SERVER_URL=echo.url)
    finally:
        echo.close()
    assert failed.returncode == 1, failed.stderr
    assert echo.seen and echo.seen[0][2] == f"Bearer {SECRET_KEY}"
    comment = (offline_repo.out / "comment.md").read_text()
    assert "**The plan failed** (exit code 1)" in comment
    assert "(HTTP 403): forbidden: ..." in comment
    assert leaked(SECRET_KEY, comment, failed.stdout, failed.stderr) == []
    assert_no_secret(offline_repo, failed.stdout, failed.stderr)
