"""The whole story a user lives, every step checked against live state read through the
official SDK: apply from nothing, status, no changes, edit a model (replace), remove a job
(cancel + delete), destroy.

The emulator runs at speed 0.01, so jobs stay QUEUED (~100 s) and a replace really cancels
running work; the speed goes up only where the story needs cancellations to settle.
"""

from __future__ import annotations

import json

from e2e.harness import E2E, inline_jobs, plan_json, planned


def test_apply_status_edit_replace_remove_destroy(e2e: E2E) -> None:
    cli, live = e2e.cli, e2e.live
    root = e2e.root("story", inline_jobs(["cheese-eval", "wine-quick", "bread-check"]))
    ws = root.workspace

    # -- 1. apply from nothing ------------------------------------------------------------
    first = cli.ok(root, "apply", "--auto-approve")
    assert "Plan: 3 to create, 0 to replace, 0 to cancel, 0 to delete." in first.stdout
    assert "Apply complete: 3 created, 0 replaced, 0 cancelled, 0 deleted." in first.stdout
    assert live.per_name(ws) == {"cheese-eval": 1, "wine-quick": 1, "bread-check": 1}
    created = {name: jobs[0] for name, jobs in live.by_name(ws).items()}
    assert {job.status for job in created.values()} == {"QUEUED"}
    for name, job in created.items():
        assert f"{name}: Creation complete [id={job.id}]" in first.stdout

    # -- 2. status, text and json ---------------------------------------------------------
    table = cli.ok(root, "status").stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "VERSION",
        "STATUS",
        "PROGRESS",
        "AGE",
        "SYNC",
        "HEALTH",
        "JOB",
        "ID",
    ]
    rows = {line.split()[0]: line for line in table[1:]}
    assert sorted(rows) == ["bread-check", "cheese-eval", "wine-quick"]
    for name, job in created.items():
        assert "QUEUED" in rows[name] and "in sync" in rows[name] and job.id in rows[name]
    status = json.loads(cli.ok(root, "status", "--format", "json").stdout)
    assert status["workspace"] == ws
    assert {j["name"]: (j["current"]["id"], j["sync"]) for j in status["jobs"]} == {
        name: (job.id, "in sync") for name, job in created.items()
    }

    # -- 3. nothing to do -----------------------------------------------------------------
    quiet = cli.run(root, "plan", "--detailed-exitcode")
    assert quiet.code == 0, str(quiet)
    assert "No changes. Live jobs match the configuration." in quiet.stdout

    # -- 4. edit a model: plan shows a replace with the field diff ------------------------
    root.jobs["cheese-eval"]["model"] = "mistral-medium-latest"
    root.write()
    changed = cli.run(root, "plan", "--detailed-exitcode")
    assert changed.code == 2, str(changed)
    text = changed.stdout
    old_id = created["cheese-eval"].id
    block = f"""
  # cheese-eval must be replaced: model changed
-/+ job "cheese-eval" {{
      ~ id     = "{old_id}" -> (known after apply)
        status = "QUEUED" (0/2)
      ~ model  = "mistral-small-latest" -> "mistral-medium-latest"
        cost   = ≈ $0.000086 (2 requests: 14 input + ≤ 20 output tokens, mistral-medium-latest)
    }}
"""
    assert block in text
    assert "Plan: 0 to create, 1 to replace, 0 to cancel, 0 to delete." in text
    assert live.per_name(ws) == {"cheese-eval": 1, "wine-quick": 1, "bread-check": 1}

    # -- 5. apply replaces: old cancelled, new created ------------------------------------
    e2e.admin.speed(50)  # cancellations from now on settle in 10 ms
    replaced = cli.ok(root, "apply", "--auto-approve")
    assert "Apply complete: 0 created, 1 replaced, 0 cancelled, 0 deleted." in replaced.stdout
    versions = live.by_name(ws)["cheese-eval"]
    assert versions[0].id == created["cheese-eval"].id
    assert [j.model for j in versions] == ["mistral-small-latest", "mistral-medium-latest"]
    assert versions[0].status in ("CANCELLATION_REQUESTED", "CANCELLED")
    assert versions[1].status != "CANCELLED"
    assert live.per_name(ws) == {"cheese-eval": 2, "wine-quick": 1, "bread-check": 1}
    assert cli.run(root, "plan", "--detailed-exitcode").code == 0

    # -- 6. remove a job from the configuration: cancelled, then deleted ------------------
    del root.jobs["bread-check"]
    root.write()
    removal = cli.run(root, "plan", "--detailed-exitcode")
    assert removal.code == 2
    assert "Plan: 0 to create, 0 to replace, 1 to cancel, 0 to delete." in removal.stdout
    removed = cli.ok(root, "apply", "--auto-approve")
    assert f"bread-check: Cancelled and deleted [id={created['bread-check'].id}]" in removed.stdout
    assert "bread-check" not in live.per_name(ws)
    assert live.per_name(ws) == {"cheese-eval": 2, "wine-quick": 1}
    assert cli.run(root, "plan", "--detailed-exitcode").code == 0

    # -- 7. destroy removes everything ----------------------------------------------------
    preview = plan_json(cli.run(root, "plan", "--destroy", "--format", "json"))
    assert preview["summary"]["destroyed_jobs"] == 3  # two versions of cheese-eval, wine-quick
    assert planned(preview, "cancel") == ["wine-quick"]
    assert live.per_name(ws) == {"cheese-eval": 2, "wine-quick": 1}  # planning wrote nothing
    destroyed = cli.ok(root, "destroy", "--auto-approve")
    assert "Destroy complete: 0 created, 0 replaced, 1 cancelled, 2 deleted." in destroyed.stdout
    assert live.jobs(ws) == []
    again = cli.ok(root, "destroy", "--auto-approve")
    assert "No managed jobs: nothing to destroy." in again.stdout
    # The configuration still wants its jobs: the next plan creates them again.
    assert planned(plan_json(cli.run(root, "plan", "--format", "json")), "create") == [
        "cheese-eval",
        "wine-quick",
    ]
