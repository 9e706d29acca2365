"""``matrix:`` and ``prompts:`` through the loader and ``reconciler validate``: expanded jobs
validated like written ones, errors at the template's line naming the combination, rows
files checked, requests generated, digests that ignore how the YAML is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.helpers import Workdir
from reconciler.config.loader import load
from reconciler.config.prompts import RowsChanged, iter_request_lines
from reconciler.errors import ConfigError

CONFIG = """\
version: 1
workspace: evals
defaults:
  endpoint: /v1/chat/completions
  model: mistral-small-latest
"""

EVAL = """\
jobs:
  qa-${{ matrix.model }}-${{ matrix.dataset }}:
    matrix:
      model: [mistral-small-latest, mistral-medium-latest]
      dataset: [cheese, wine]
      exclude: [{model: mistral-medium-latest, dataset: wine}]
    model: ${{ matrix.model }}
    metadata: {dataset: "${{ matrix.dataset }}"}
    prompts:
      rows: ../data/${{ matrix.dataset }}.jsonl
      custom_id: q-${{ row.id }}
      body:
        max_tokens: ${{ row.n }}
        messages:
          - {role: user, content: "Question: ${{ row.question }}"}
"""


def rows(*items: dict[str, object]) -> str:
    return "".join(json.dumps(i) + "\n" for i in items)


CHEESE = rows({"id": 1, "question": "Brie?", "n": 10}, {"id": 2, "question": "Comté?", "n": 20})
WINE = rows({"id": 1, "question": "Chablis?", "n": 5})


def setup(workdir: Workdir, jobs: str = EVAL, **files: str) -> None:
    workdir.write(
        {
            "reconciler.yaml": CONFIG,
            "jobs/eval.yaml": jobs,
            "data/cheese.jsonl": CHEESE,
            "data/wine.jsonl": WINE,
            **{k.replace("__", "/").replace("_dot_", "."): v for k, v in files.items()},
        }
    )


def problems(workdir: Workdir) -> list[str]:
    result = workdir.validate()
    assert result.exit_code == 1, result.output
    return result.stderr.splitlines()[:-1]


def test_a_matrix_expands_into_named_jobs_with_the_values_filled_in(workdir: Workdir) -> None:
    setup(workdir)
    state = load(workdir.root)
    assert [(j.name, j.model, j.metadata_dict, j.request_count) for j in state.jobs] == [
        ("qa-mistral-medium-latest-cheese", "mistral-medium-latest", {"dataset": "cheese"}, 2),
        ("qa-mistral-small-latest-cheese", "mistral-small-latest", {"dataset": "cheese"}, 2),
        ("qa-mistral-small-latest-wine", "mistral-small-latest", {"dataset": "wine"}, 1),
    ]
    assert state.jobs[2].origin == (
        "qa-${{ matrix.model }}-${{ matrix.dataset }} [model=mistral-small-latest, dataset=wine]"
    )
    result = workdir.validate()
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Configuration is valid: 3 jobs (3 from matrices) in 2 files (workspace evals).\n"
    )


def test_generated_requests_keep_types_and_are_canonical_jsonl(workdir: Workdir) -> None:
    setup(workdir)
    job = load(workdir.root).by_name()["qa-mistral-small-latest-cheese"]
    assert job.prompts is not None
    lines = list(iter_request_lines(workdir.root, job.prompts))
    assert lines == [
        b'{"custom_id":"q-1","body":{"max_tokens":10,"messages":[{"content":"Question: Brie?",'
        b'"role":"user"}]}}\n',
        '{"custom_id":"q-2","body":{"max_tokens":20,"messages":[{"content":"Question: Comté?",'
        '"role":"user"}]}}\n'.encode(),
    ]


def test_typed_matrix_values_keep_their_types(workdir: Workdir) -> None:
    jobs = """\
jobs:
  t-${{ matrix.hours }}:
    matrix: {hours: [2, 48]}
    timeout_hours: ${{ matrix.hours }}
    requests: [{custom_id: "0", body: {max_tokens: "${{ matrix.hours }}"}}]
"""
    setup(workdir, jobs)
    specs = load(workdir.root).jobs
    assert [(s.name, s.timeout_hours, s.requests) for s in specs] == [
        ("t-2", 2, [{"custom_id": "0", "body": {"max_tokens": 2}}]),
        ("t-48", 48, [{"custom_id": "0", "body": {"max_tokens": 48}}]),
    ]


def test_csv_rows_are_strings_named_by_the_header(workdir: Workdir) -> None:
    jobs = """\
jobs:
  csv-job:
    prompts:
      rows: ../data/q.csv
      custom_id: ${{ row.id }}
      body: {messages: [{role: user, content: "${{ row['the question'] }}"}], n: "${{ row.id }}"}
"""
    csv_rows = 'id,the question\r\n7,"Why, oh why?"\r\n8,"Two\nlines"\r\n'
    setup(workdir, jobs, data__q_dot_csv=csv_rows)
    job = load(workdir.root).jobs[0]
    assert job.prompts is not None and job.prompts.format == "csv"
    got = [json.loads(line) for line in iter_request_lines(workdir.root, job.prompts)]
    assert got == [
        {
            "custom_id": "7",
            "body": {"messages": [{"role": "user", "content": "Why, oh why?"}], "n": "7"},
        },
        {
            "custom_id": "8",
            "body": {"messages": [{"role": "user", "content": "Two\nlines"}], "n": "8"},
        },
    ]


def test_an_error_in_an_expanded_job_points_at_the_template_and_names_the_combination(
    workdir: Workdir,
) -> None:
    jobs = """\
jobs:
  qa-${{ matrix.model }}:
    matrix:
      model: [mistral-small-latest, x]
      hours: [500]
    model: ${{ matrix.model }}
    timeout_hours: ${{ matrix.hours }}
    requests: [{custom_id: "0", body: {}}]
"""
    setup(workdir, jobs)
    assert problems(workdir) == [
        "jobs/eval.yaml:7:20: jobs.qa-${{ matrix.model }} [model=mistral-small-latest,"
        " hours=500].timeout_hours: must be at most 168 (got 500)",
        "jobs/eval.yaml:7:20: jobs.qa-${{ matrix.model }} [model=x, hours=500].timeout_hours:"
        " must be at most 168 (got 500)",
    ]


def test_template_problems_are_said_once_with_a_count(workdir: Workdir) -> None:
    setup(workdir, EVAL.replace('${{ matrix.dataset }}"}', '${{ matrix.datset }}"}'))
    assert problems(workdir) == [
        "jobs/eval.yaml:8:25: jobs.qa-${{ matrix.model }}-${{ matrix.dataset }}"
        " [model=mistral-small-latest, dataset=cheese].metadata.dataset: unknown matrix key"
        " 'datset' (known: dataset, model) (and in 2 more combinations)",
    ]


def test_expanded_names_must_be_valid_and_unique(workdir: Workdir) -> None:
    jobs = """\
jobs:
  qa-${{ matrix.model }}:
    matrix:
      model: [small, Big Model]
      dataset: [a, b]
    requests: [{custom_id: "0", body: {}}]
"""
    setup(workdir, jobs)
    assert problems(workdir) == [
        "jobs/eval.yaml:2:3: jobs.qa-${{ matrix.model }} [model=Big Model, dataset=a]:"
        " expands to the name 'qa-Big Model': job names use lowercase letters, digits, '-',"
        " '_' and '.', 1 to 63 characters",
        "jobs/eval.yaml:2:3: jobs.qa-${{ matrix.model }} [model=Big Model, dataset=b]:"
        " expands to the name 'qa-Big Model': job names use lowercase letters, digits, '-',"
        " '_' and '.', 1 to 63 characters",
        "jobs/eval.yaml:2:3: jobs.qa-${{ matrix.model }} [model=small, dataset=b]: expands to"
        " the name 'qa-small', as [model=small, dataset=a] does; use every matrix key that"
        " varies in the name",
    ]


def test_a_collision_across_files_names_both_sources(workdir: Workdir) -> None:
    setup(
        workdir,
        EVAL,
        jobs__other_dot_yaml=(
            "jobs:\n  qa-mistral-small-latest-wine:\n    requests: [{custom_id: '0', body: {}}]\n"
        ),
    )
    assert problems(workdir) == [
        "jobs/other.yaml:2:3: jobs.qa-mistral-small-latest-wine: job"
        " 'qa-mistral-small-latest-wine' is already defined at jobs/eval.yaml:2:3 (by"
        " jobs.qa-${{ matrix.model }}-${{ matrix.dataset }} [model=mistral-small-latest,"
        " dataset=wine]); job names must be unique across the config root",
    ]


def test_a_collision_inside_one_file_names_both_sources(workdir: Workdir) -> None:
    jobs = EVAL + "  qa-mistral-small-latest-wine:\n    requests: [{custom_id: '0', body: {}}]\n"
    setup(workdir, jobs)
    assert problems(workdir) == [
        "jobs/eval.yaml:16:3: jobs.qa-mistral-small-latest-wine: job"
        " 'qa-mistral-small-latest-wine' is already defined at jobs/eval.yaml:2:3 (by"
        " jobs.qa-${{ matrix.model }}-${{ matrix.dataset }} [model=mistral-small-latest,"
        " dataset=wine]); job names must be unique across the config root",
    ]


def test_templates_need_a_matrix_outside_prompts(workdir: Workdir) -> None:
    jobs = """\
jobs:
  plain:
    model: ${{ matrix.model }}
    requests: [{custom_id: "0", body: {}}]
  name-${{ matrix.x }}:
    requests: [{custom_id: "0", body: {}}]
"""
    setup(workdir, jobs)
    assert problems(workdir) == [
        "jobs/eval.yaml:3:12: jobs.plain.model: ${{ … }} needs a matrix: on this job (only"
        " prompts.custom_id and prompts.body take ${{ row.FIELD }} without one)",
        "jobs/eval.yaml:5:3: jobs.name-${{ matrix.x }}: a templated job name needs a matrix:"
        " on the job",
    ]


def test_inline_requests_of_a_job_without_matrix_may_quote_templates(workdir: Workdir) -> None:
    text = "How do I use ${{ matrix.os }} in a workflow? {% raw %}"
    jobs = f"""\
jobs:
  ci-help:
    metadata: {{note: "costs ${{{{ money"}}
    requests: [{{custom_id: "0", body: {{messages: [{{role: user, content: "{text}"}}]}}}}]
"""
    setup(workdir, jobs)
    (job,) = load(workdir.root).jobs
    assert job.requests == [
        {"custom_id": "0", "body": {"messages": [{"role": "user", "content": text}]}}
    ]
    assert job.metadata_dict == {"note": "costs ${{ money"}


def test_a_bad_matrix_is_located_in_it(workdir: Workdir) -> None:
    jobs = """\
jobs:
  qa-${{ matrix.model }}:
    matrix:
      model: mistral-small-latest
      exclude: [{dataset: wine}]
    requests: [{custom_id: "0", body: {}}]
"""
    setup(workdir, jobs)
    assert problems(workdir) == [
        "jobs/eval.yaml:4:14: jobs.qa-${{ matrix.model }}.matrix.model: must be a list of"
        " values (write [mistral-small-latest] for one)",
        "jobs/eval.yaml:5:18: jobs.qa-${{ matrix.model }}.matrix.exclude[0].dataset: 'dataset'"
        " is not a key of the matrix (keys: model)",
    ]


def test_hostile_templates_in_a_config_are_refused(workdir: Workdir) -> None:
    jobs = """\
jobs:
  evil:
    prompts:
      rows: ../data/cheese.jsonl
      custom_id: ${{ row.id.__class__ }}
      body: {messages: "{% for x in range(10**9) %}${{ row.question }}{% endfor %}"}
"""
    setup(workdir, jobs)
    assert problems(workdir) == [
        "jobs/eval.yaml:5:18: jobs.evil.prompts.custom_id: not supported in templates: nested"
        " lookups; only plain lookups (row.KEY) are",
        "jobs/eval.yaml:6:24: jobs.evil.prompts.body.messages: template blocks ({% … %}) and"
        " comments ({# … #}) are not supported, only ${{ … }} lookups; write ${{ '{%' }} for a"
        " literal '{%'",
    ]


def test_rows_problems_name_the_rows_file_and_line(workdir: Workdir) -> None:
    cheese = rows({"id": 1, "question": "a", "n": 1}, {"id": 2, "n": 1}) + "[1]\n{bad\n"
    cheese += rows({"id": 1, "question": "b", "n": 1}, {"id": None, "question": "c", "n": 1})
    setup(workdir, EVAL, data__cheese_dot_jsonl=cheese)
    label = (
        "jobs.qa-${{ matrix.model }}-${{ matrix.dataset }}"
        " [model=mistral-small-latest, dataset=cheese]"
    )
    assert problems(workdir) == [
        f"data/cheese.jsonl:2: {label}.prompts.body.messages[0].content: row has no field"
        " 'question' (it has: id, n)",
        "data/cheese.jsonl:3:1: each line must be a JSON object (one row), not an array",
        "data/cheese.jsonl:4:2: invalid JSON: Expecting property name enclosed in double quotes",
        f"data/cheese.jsonl:5: {label}.prompts.custom_id: generates the custom_id 'q-1' again"
        " (first at line 1); custom_ids must be unique within a job",
    ]
    # A null custom_id is refused (q-${{ row.id }} made it "q-", which is fine):
    null_id = rows({"id": None, "question": "c", "n": 1})
    setup(workdir, EVAL.replace("q-${{ row.id }}", "${{ row.id }}"), data__wine_dot_jsonl=null_id)
    assert any("custom_id must be a string or a number, not null" in p for p in problems(workdir))


def test_a_csv_without_a_column_is_reported_once_at_its_header(workdir: Workdir) -> None:
    jobs = """\
jobs:
  csv-job:
    prompts:
      rows: ../data/q.csv
      custom_id: ${{ row.id }}
      body: {messages: [{role: user, content: "${{ row.question }}"}]}
"""
    setup(workdir, jobs, data__q_dot_csv="id,text\n1,a\n2,b\n3\n")
    assert problems(workdir) == [
        "data/q.csv:1: jobs.csv-job.prompts.body.messages[0].content: the header has no column"
        " 'question' (columns: id, text)",
        "data/q.csv:4:1: row has 1 cell, the header has 2",
    ]


@pytest.mark.parametrize(
    ("rows_ref", "files", "message"),
    [
        ("../../outside.jsonl", {}, "is outside the config root; rows files must live inside it"),
        (
            "../data/link.jsonl",
            {"data/link.jsonl": ("symlink", "/etc/hostname")},
            "leads outside the config root through a symlink",
        ),
        ("../data/none.jsonl", {}, "no such file: data/none.jsonl"),
        ("../data/q.txt", {"data/q.txt": "x"}, "rows files are JSONL (.jsonl) or CSV (.csv)"),
    ],
)
def test_rows_files_stay_inside_the_root(
    workdir: Workdir, rows_ref: str, files: dict[str, str | tuple[str, str]], message: str
) -> None:
    jobs = f"""\
jobs:
  j:
    prompts:
      rows: {rows_ref}
      custom_id: ${{{{ row.id }}}}
      body: {{}}
"""
    setup(workdir, jobs)
    workdir.write(files)  # type: ignore[arg-type]
    (problem,) = problems(workdir)
    assert problem.startswith("jobs/eval.yaml:4:13: jobs.j.prompts.rows: "), problem
    assert message in problem


def test_exactly_one_input_source(workdir: Workdir) -> None:
    jobs = """\
jobs:
  j:
    requests: [{custom_id: "0", body: {}}]
    prompts: {rows: ../data/cheese.jsonl, custom_id: "${{ row.id }}", body: {}}
"""
    setup(workdir, jobs)
    assert problems(workdir) == [
        "jobs/eval.yaml:2:3: jobs.j: set only one input source: inputs, input_files, requests"
        " or prompts",
    ]


def test_the_digest_ignores_how_the_yaml_is_written_and_follows_rows_and_templates(
    workdir: Workdir,
) -> None:
    setup(workdir)
    before = {j.name: j.digest for j in load(workdir.root).jobs}
    reformatted = """\
jobs:
  "qa-${{matrix.model}}-${{ matrix['dataset'] }}":
    prompts:
      body:
        messages: [{content: 'Question: ${{row.question}}', role: user}]
        max_tokens: "${{ row['n'] }}"
      custom_id: "q-${{  row.id  }}"
      rows: ../data/${{ matrix.dataset }}.jsonl
    metadata:
      dataset: ${{ matrix.dataset }}
    model: "${{ matrix.model }}"
    matrix:
      exclude:
        - {dataset: wine, model: mistral-medium-latest}
      dataset: [cheese, wine]
      model: [mistral-small-latest, mistral-medium-latest]
"""
    setup(workdir, reformatted)
    assert {j.name: j.digest for j in load(workdir.root).jobs} == before
    # An edited row, or template, changes exactly the jobs using it.
    setup(workdir, EVAL, data__wine_dot_jsonl=rows({"id": 1, "question": "Chablis!", "n": 5}))
    after = {j.name: j.digest for j in load(workdir.root).jobs}
    assert [n for n in after if after[n] != before[n]] == ["qa-mistral-small-latest-wine"]
    setup(workdir, EVAL.replace("Question:", "Q:"), data__wine_dot_jsonl=WINE)
    edited = {j.name: j.digest for j in load(workdir.root).jobs}
    assert all(edited[n] != before[n] for n in before)


def test_the_digest_of_a_job_without_matrix_ignores_template_spelling(workdir: Workdir) -> None:
    spellings = ["q-${{ row.id }}", "q-${{row.id}}", "q-${{ row['id'] }}"]
    digests = set()
    for spelling in spellings:
        jobs = f"""\
jobs:
  plain:
    prompts:
      rows: ../data/cheese.jsonl
      custom_id: "{spelling}"
      body: {{messages: [{{role: user, content: "${{{{row.question}}}}"}}]}}
"""
        setup(workdir, jobs)
        digests.add(load(workdir.root).jobs[0].digest)
    assert len(digests) == 1


def test_renaming_a_rows_file_changes_nothing(workdir: Workdir) -> None:
    jobs = EVAL.replace("../data/${{ matrix.dataset }}.jsonl", "../data/cheese.jsonl")
    setup(workdir, jobs)
    before = [j.digest for j in load(workdir.root).jobs]
    (workdir.root / "data/cheese.jsonl").rename(workdir.root / "data/fromage.jsonl")
    setup(workdir, jobs.replace("cheese.jsonl", "fromage.jsonl"))
    (workdir.root / "data/cheese.jsonl").unlink()
    assert [j.digest for j in load(workdir.root).jobs] == before


def test_rows_read_once_for_many_jobs_sharing_them(
    workdir: Workdir, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.config import loader

    calls: list[Path] = []
    real = loader.check_rows  # type: ignore[attr-defined]

    def counting(path: Path, *args: object, **kwargs: object) -> object:
        calls.append(path)
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loader, "check_rows", counting)
    jobs = EVAL.replace("[mistral-small-latest, mistral-medium-latest]", "[a, b, c, d, e, f]")
    setup(workdir, jobs.replace("exclude: [{model: mistral-medium-latest, dataset: wine}]", ""))
    assert len(load(workdir.root).jobs) == 12
    assert sorted(p.name for p in calls) == ["cheese.jsonl", "wine.jsonl"]


def test_generation_refuses_rows_changed_since_the_spec(workdir: Workdir) -> None:
    setup(workdir)
    job = load(workdir.root).by_name()["qa-mistral-small-latest-wine"]
    assert job.prompts is not None
    (workdir.root / "data/wine.jsonl").write_text(rows({"id": 1, "question": "Other", "n": 5}))
    with pytest.raises(RowsChanged, match="changed since the plan was made"):
        list(iter_request_lines(workdir.root, job.prompts))


def test_explain_prints_the_resolved_job_and_its_first_requests(workdir: Workdir) -> None:
    setup(workdir)
    result = workdir.cli("-C", ".", "validate", "--explain", "qa-mistral-small-latest-cheese")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Job qa-mistral-small-latest-cheese, defined at jobs/eval.yaml:2:3 by jobs.qa-" in out
    assert '"custom_id": "q-${{ row.id }}"' in out
    assert '"max_tokens": "${{ row.n }}"' in out
    assert out.endswith(
        "First 2 requests of 2:\n"
        '{"custom_id":"q-1","body":{"max_tokens":10,"messages":[{"content":"Question: Brie?",'
        '"role":"user"}]}}\n'
        '{"custom_id":"q-2","body":{"max_tokens":20,"messages":[{"content":"Question: Comté?",'
        '"role":"user"}]}}\n'
    )
    missing = workdir.cli("-C", ".", "validate", "--explain", "qa-mistral-small-latest-chese")
    assert missing.exit_code == 1
    assert "did you mean 'qa-mistral-small-latest-cheese'?" in missing.stderr


def test_a_config_error_raises_config_error_not_a_traceback(workdir: Workdir) -> None:
    setup(workdir, EVAL.replace("dataset: [cheese, wine]", "dataset: {a: 1}"))
    with pytest.raises(ConfigError):
        load(workdir.root)


def test_defaults_take_no_matrix_and_no_matrix_templates(workdir: Workdir) -> None:
    workdir.write(
        {
            "reconciler.yaml": CONFIG.replace(
                "  model: mistral-small-latest\n",
                "  model: ${{ matrix.model }}\n  matrix: {model: [a]}\n",
            ),
            "jobs/eval.yaml": "jobs:\n  j:\n    requests: [{custom_id: '0', body: {}}]\n",
        }
    )
    assert problems(workdir) == [
        "reconciler.yaml:3:1: defaults: defaults cannot have a matrix: (put it on a job entry)",
        "reconciler.yaml:5:10: defaults.model: defaults are not templates (only"
        " prompts.custom_id and prompts.body use ${{ row.FIELD }}); put ${{ matrix.KEY }} in"
        " the job with the matrix:",
    ]


def test_duplicate_custom_ids_beyond_the_in_memory_bound_are_found(
    workdir: Workdir, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functools

    from reconciler.config import prompts
    from reconciler.inputs import CustomIdIndex

    monkeypatch.setattr(prompts, "CustomIdIndex", functools.partial(CustomIdIndex, 3))
    many = [{"id": i, "question": "q", "n": 1} for i in range(50)]
    many.insert(40, {"id": 7, "question": "again", "n": 1})
    setup(workdir, EVAL, data__cheese_dot_jsonl=rows(*many))
    found = [p for p in problems(workdir) if "again (first at" in p]
    assert [p.split(": ")[0] for p in found] == ["data/cheese.jsonl:41"]
    assert "'q-7' again (first at line 8)" in found[0]


def test_a_prompts_job_above_the_request_limit_is_refused_until_it_can_be_split(
    workdir: Workdir,
) -> None:
    setup(workdir)
    config = (workdir.root / "reconciler.yaml").read_text()
    (workdir.root / "reconciler.yaml").write_text(config + "limits: {max_requests_per_job: 1}\n")
    found = problems(workdir)
    assert len(found) == 2  # the two cheese jobs (2 rows); the wine job has one row
    for problem in found:
        assert problem.startswith("jobs/eval.yaml:10:13: jobs.qa-${{ matrix.model }}-")
        assert "dataset=cheese].prompts.rows: 2 rows: prompts jobs are not split" in problem
