#!/usr/bin/env bash
# The reconciler commands CI runs, in one place: the GitHub Actions and GitLab CI recipes
# beside this file call it, and tests/gitops runs it verbatim against a served emulator.
#
#   reconcile.sh plan    on a pull request: validate, plan --out (the text plan goes to the
#                        log), the markdown PR comment, the config tree the plan was made from
#   reconcile.sh apply   on merge: refuse a plan made from another configuration (exit 4),
#                        or without the evidence of which one (exit 1); plan main as it is
#                        now and refuse unless that plan means the same as the reviewed one
#                        (exit 4); apply exactly the reviewed plan file (exit 4 when live
#                        jobs moved), then plan again to show what is left
#
# Settings (environment):
#   RECONCILER_ROOT         config root, the folder holding reconciler.yaml   (default: .)
#   RECONCILER_OUT          folder for the plan file and the comment (default: reconciler-plan)
#   RECONCILER              the reconciler command                   (default: reconciler)
#   RECONCILER_APPLY_FLAGS  extra flags for apply, e.g. "--parallelism 16" or "--wait"
#   PYTHON                  the Python that compares two plans (default: python3)
#   MISTRAL_API_KEY         from the CI's secrets; never printed by this script or reconciler
#   MISTRAL_SERVER_URL      optional: a server named outside the repository
#
# Files in RECONCILER_OUT after `plan`:
#   plan.tfplan   the saved plan (no API key in it): the artifact `apply` applies
#   comment.md    the PR comment; its first line is the hidden marker
#                 <!-- reconciler-plan: WORKSPACE --> by which it is updated in place
#   plan.txt      the full text plan (the comment is capped at 65,536 characters)
#   tree          git tree id of the config root the plan was made from
#   exitcode      the plan's outcome: 0 no changes, 2 changes, 1 error, 3 blocked
#
# Exit codes: as reconciler's: 0 ok (a plan with changes is ok on a PR), 1 error,
# 3 blocked by a safety guard, 4 stale plan (nothing was applied).
set -euo pipefail
set +o xtrace # never trace: the environment holds the API key

mode=${1:-}
root=${RECONCILER_ROOT:-.}
out=${RECONCILER_OUT:-reconciler-plan}
read -r -a rc <<<"${RECONCILER:-reconciler}"
read -r -a apply_flags <<<"${RECONCILER_APPLY_FLAGS:-}"
read -r -a python <<<"${PYTHON:-python3}"

say() { printf '%s\n' "$*" >&2; }

# A message CI shows prominently: a GitHub annotation, plain text elsewhere.
fail_note() {
	if [ "${GITHUB_ACTIONS:-}" = true ]; then
		printf '::error title=reconciler::%s\n' "$*" >&2
	else
		say "ERROR: $*"
	fi
}

# The git tree id of the config root at HEAD (empty outside git): equal ids, equal files.
root_tree() {
	local prefix
	prefix=$(git -C "$root" rev-parse --show-prefix 2>/dev/null) || return 0
	git -C "$root" rev-parse "HEAD:$prefix" 2>/dev/null || true
}

# Best effort, for the comment of a plan that failed before reconciler could say it.
workspace_guess() {
	sed -n 's/^workspace:[[:space:]]*["'\'']\{0,1\}\([a-z0-9][a-z0-9._\/-]*\).*/\1/p' \
		"$root/reconciler.yaml" 2>/dev/null | head -n 1
}

failure_comment() {
	local code=$1 log=$2 workspace
	workspace=$(workspace_guess)
	printf '<!-- reconciler-plan: %s -->\n' "${workspace:-$root}"
	# shellcheck disable=SC2016 # backticks are markdown here
	printf '### Reconciler plan for workspace `%s`\n\n' "${workspace:-?}"
	printf '> [!CAUTION]\n> **The plan failed** (exit code %s): nothing can be applied.' "$code"
	printf ' Fix the problems below and push again.\n\n'
	printf '```text\n'
	# Keep the comment far below GitHub's 65,536 characters; the log has everything.
	# shellcheck disable=SC2016
	tail -c 60000 "$log" | sed 's/```/` ` `/g'
	printf '\n```\n'
}

plan() {
	mkdir -p "$out"
	rm -f "$out/plan.tfplan" "$out/comment.md" "$out/plan.txt" "$out/tree" "$out/exitcode" \
		"$out/plan.log"
	local code=0 log="$out/plan.log"

	say "==> reconciler validate"
	"${rc[@]}" -C "$root" validate 2>"$log" || code=$?
	cat "$log" >&2
	if [ "$code" = 0 ]; then
		say "==> reconciler plan --out $out/plan.tfplan --format markdown --marker"
		# One read of live state gives both the file apply will apply and the comment
		# reviewers read, so what is reviewed is what is applied.
		"${rc[@]}" -C "$root" plan --out "$out/plan.tfplan" --format markdown --marker \
			--detailed-exitcode >"$out/comment.md" 2>"$log" || code=$?
		cat "$log" >&2
	fi
	echo "$code" >"$out/exitcode"

	case $code in
	0 | 2)
		say "==> reconciler show $out/plan.tfplan"
		"${rc[@]}" show "$out/plan.tfplan" | tee "$out/plan.txt"
		root_tree >"$out/tree"
		if [ "$code" = 2 ]; then say "The plan has changes: merge to apply them."; fi
		return 0
		;;
	3)
		# comment.md holds the plan and the guard that blocks it; show it in the log too.
		cat "$out/comment.md"
		fail_note "the plan is blocked by a safety guard (exit 3): see the plan comment"
		return 3
		;;
	*)
		failure_comment "$code" "$log" >"$out/comment.md"
		fail_note "the plan failed (exit $code): see the errors above"
		return "$code"
		;;
	esac
}

# Whether two plans (`reconciler show --format json`) mean the same: the same action on the
# same live job with the same spec, diffs and guards, whatever their create ids, the time
# they were made, or how far running jobs have progressed since. Prints the differences.
same_plan() {
	"${python[@]}" - "$1" "$2" <<'PY'
import json
import sys


def meaning(path):
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)

    def ref(job):
        return None if job is None else job.get("id")

    changes = {}
    for c in doc.get("changes", []):
        what = {
            "action": c.get("action"),
            "name": c.get("name"),
            "reason": c.get("reason"),
            "live": ref(c.get("live")),
            "previous": ref(c.get("previous")),
            "spec": (c.get("spec") or {}).get("digest"),
            "attempt": c.get("attempt"),
            "then_delete": c.get("then_delete"),
            "await_terminal": c.get("await_terminal"),
            "protected": c.get("protected"),
            "diffs": [[d.get("path"), d.get("change"), d.get("old"), d.get("new")]
                      for d in c.get("diffs", [])],
        }
        changes[json.dumps(what, sort_keys=True)] = f"{what['action']} {what['name']!r}"
    guards = {json.dumps([v.get("guard"), v.get("names")]) for v in doc.get("violations", [])}
    return doc.get("workspace"), doc.get("blocked"), changes, guards


(ws_a, blocked_a, a, guards_a), (ws_b, blocked_b, b, guards_b) = map(meaning, sys.argv[1:3])
same = (ws_a, blocked_a, set(a), guards_a) == (ws_b, blocked_b, set(b), guards_b)
if not same:
    if ws_a != ws_b:
        print(f"  workspace {ws_a!r} in the reviewed plan, {ws_b!r} now", file=sys.stderr)
    for key in sorted(set(a) - set(b)):
        print(f"  only in the reviewed plan: {a[key]}", file=sys.stderr)
    for key in sorted(set(b) - set(a)):
        print(f"  only in the plan of main now: {b[key]}", file=sys.stderr)
    if guards_a != guards_b or blocked_a != blocked_b:
        print("  the safety guards differ", file=sys.stderr)
sys.exit(0 if same else 1)
PY
}

apply() {
	local planfile="$out/plan.tfplan"
	if [ ! -f "$planfile" ]; then
		fail_note "no saved plan at $planfile: fetch the plan reviewed in the pull request first"
		return 1
	fi
	# The plan file carries the desired specs, so it would apply exactly what was reviewed
	# even from another checkout; but a configuration that changed since (another merge)
	# would then not be what main says. Same tree id, same files. Evidence that cannot be
	# checked is a refusal, never a skipped check.
	if [ ! -s "$out/tree" ]; then
		fail_note "no config tree recorded with the plan ($out/tree): there is no proof of which configuration it was made from. Nothing was applied. Plan again: open a pull request, or run the workflow by hand."
		return 1
	fi
	local planned now
	planned=$(cat "$out/tree")
	now=$(root_tree)
	if [ -z "$now" ]; then
		fail_note "$root is not in a git checkout here: the plan cannot be checked against the configuration it was made from. Nothing was applied."
		return 1
	fi
	if [ "$now" != "$planned" ]; then
		fail_note "stale plan: $root on this commit differs from the configuration the pull request planned (another change was merged first). Nothing was applied. Plan again: open a pull request, or run the workflow by hand."
		return 4
	fi

	# Do not trust the artifact alone: plan main as it is now, and apply the reviewed plan
	# only if that plan means exactly the same (compared by meaning, not bytes).
	say "==> reconciler plan --out $out/main.tfplan (main as it is now)"
	local code=0
	"${rc[@]}" -C "$root" plan --out "$out/main.tfplan" --detailed-exitcode || code=$?
	case $code in
	0 | 2) ;;
	3)
		fail_note "the plan of main is blocked by a safety guard (exit 3): nothing was applied"
		return 3
		;;
	*)
		fail_note "planning main failed (exit $code): nothing was applied"
		return "$code"
		;;
	esac
	code=0
	"${rc[@]}" show "$planfile" --format json >"$out/reviewed.json" || code=$?
	if [ "$code" != 0 ]; then
		fail_note "the reviewed plan $planfile cannot be read (exit $code): nothing was applied"
		return 1
	fi
	"${rc[@]}" show "$out/main.tfplan" --format json >"$out/main.json"
	if ! same_plan "$out/reviewed.json" "$out/main.json"; then
		fail_note "stale plan: planning main now gives another plan than the one reviewed in the pull request (differences above: live jobs moved, or it was applied already). Nothing was applied. Plan again: open a pull request, or run the workflow by hand."
		return 4
	fi
	say "The plan of main now is the reviewed plan."

	say "==> reconciler apply $planfile"
	code=0
	"${rc[@]}" -C "$root" apply "$planfile" "${apply_flags[@]}" || code=$?
	if [ "$code" = 4 ]; then
		fail_note "stale plan: live jobs changed since the pull request's plan was made, so it was not applied (exit 4). Nothing was changed. Plan again: open a pull request, or run the workflow by hand."
		return 4
	elif [ "$code" != 0 ]; then
		fail_note "apply failed (exit $code): see the report above"
		return "$code"
	fi

	say "==> reconciler plan --detailed-exitcode"
	local left=0
	"${rc[@]}" -C "$root" plan --detailed-exitcode || left=$?
	echo "$left" >"$out/after-apply-exitcode"
	case $left in
	0) say "Nothing left to do." ;;
	2) say "Changes remain (e.g. deletes waiting for a cancel to finish): the next apply does them." ;;
	*) say "The check after apply failed (exit $left); the apply itself succeeded." ;;
	esac
}

case $mode in
plan) plan ;;
apply) apply ;;
*)
	say "usage: $0 plan|apply   (see the comment at the top of this file)"
	exit 64
	;;
esac
