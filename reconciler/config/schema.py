"""JSON Schema validation of parsed YAML, with every error mapped to ``file:line:column``.

The schemas live in ``reconciler/schemas`` (``schemas/`` at the top of the repository),
where editors find them too. jsonschema's own messages print whole Python values; each
error is rewritten here for a person reading CI output: one line, the offending field,
and a hint where one helps (a did-you-mean for a misspelt field, "quote it" for a number
where a string belongs). Schemas may carry ``errorMessage`` / ``patternErrorMessage``
(the keywords VS Code's JSON support shows too) to say a rule in words.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any, Final, Literal

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from reconciler.config.yamlload import FieldPath, YamlDoc, format_path
from reconciler.errors import Problem

SchemaKind = Literal["config", "jobs", "plan"]
SCHEMA_FILES: Final[Mapping[str, str]] = {
    "config": "config.schema.json",
    "jobs": "jobs.schema.json",
    "plan": "plan.schema.json",
}


def schema_text(kind: str) -> str | None:
    """The schema's JSON text as shipped, or None when it is not there (plan: another
    part of the package writes it)."""
    try:
        return (resources.files("reconciler") / "schemas" / SCHEMA_FILES[kind]).read_text(
            encoding="utf-8"
        )
    except FileNotFoundError:
        return None


@cache
def load_schema(kind: str) -> dict[str, Any]:
    text = schema_text(kind)
    if text is None:
        raise FileNotFoundError(SCHEMA_FILES[kind])
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator(kind: str) -> jsonschema.protocols.Validator:
    resources_ = [
        (SCHEMA_FILES[k], Resource.from_contents(load_schema(k), default_specification=DRAFT202012))
        for k in ("config", "jobs")
    ]
    registry: Registry[Any] = Registry().with_resources(resources_)
    schema = load_schema(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)


_TYPE_NAMES: Final = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'model'?)`` or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _short(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _join(options: Sequence[Any]) -> str:
    return ", ".join(str(o) for o in options)


def _as_value(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """The same error, no longer marked as coming from ``propertyNames``."""
    return jsonschema.ValidationError(
        error.message,
        validator=error.validator,
        validator_value=error.validator_value,
        instance=error.instance,
        schema=error.schema,
        path=error.absolute_path,
    )


def _messages(
    error: jsonschema.ValidationError, doc: YamlDoc
) -> Iterator[tuple[FieldPath, bool, str]]:
    """(field path, locate the key rather than the value, message) for one error."""
    path: FieldPath = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    instance: Any = error.instance
    expected: Any = error.validator_value
    if "propertyNames" in error.absolute_schema_path and isinstance(instance, str):
        # A bad key: jsonschema reports it as the instance, at the mapping's own path.
        key_path = (*path, instance)
        for _, _, message in _messages(_as_value(error), doc):
            yield key_path, True, f"key {message}" if message.startswith("must") else message
        return
    custom = schema.get("errorMessage")
    if isinstance(custom, str):
        yield path, True, custom
    elif kind == "additionalProperties" and isinstance(instance, dict):
        known = sorted(schema.get("properties", {}))
        patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
        for key in instance:
            if key in known or any(p.search(key) for p in patterns):
                continue
            hint = did_you_mean(key, known)
            if not hint and known:
                hint = f" (expected one of: {_join(known)})"
            yield (*path, key), True, f"unknown field{hint}"
    elif kind == "required":
        for name in expected:
            if isinstance(instance, dict) and name not in instance:
                yield (*path, str(name)), True, "missing required field"
    elif kind == "type":
        wanted = [expected] if isinstance(expected, str) else list(expected)
        want = " or ".join(_TYPE_NAMES.get(t, t) for t in wanted)
        message = f"must be {want}, not {_type_of(instance)}"
        text = doc.scalar_text(path)
        if "string" in wanted and instance is not None and not isinstance(instance, dict | list):
            message += f'; quote it: "{text if text is not None else instance}"'
        yield path, False, message
    elif kind == "enum":
        hint = did_you_mean(str(instance), [str(e) for e in expected])
        yield path, False, f"{_short(instance)} is not one of: {_join(expected)}{hint}"
    elif kind == "const":
        yield path, False, f"must be {_short(expected)}, not {_short(instance)}"
    elif kind == "pattern":
        custom_pattern = schema.get("patternErrorMessage")
        if isinstance(custom_pattern, str):
            yield path, False, f"{_short(instance)}: {custom_pattern}"
        else:
            yield path, False, f"{_short(instance)} does not match {expected}"
    elif kind == "minLength":
        if expected == 1:
            yield path, False, "must not be empty"
        else:
            yield path, False, f"must be at least {expected} characters"
    elif kind == "maxLength":
        yield path, False, f"must be at most {expected} characters (this is {len(instance)})"
    elif kind == "minimum":
        yield path, False, f"must be at least {expected} (got {_short(instance)})"
    elif kind == "maximum":
        yield path, False, f"must be at most {expected} (got {_short(instance)})"
    elif kind == "minItems":
        if expected == 1:
            yield path, False, "must not be empty"
        else:
            yield path, False, f"must have at least {expected} items"
    elif kind == "maxItems":
        yield path, False, f"must have at most {expected:,} items (this has {len(instance):,})"
    else:  # pragma: no cover - every keyword our schemas use is handled above
        yield path, False, error.message


def validate_paths(doc: YamlDoc, kind: SchemaKind) -> list[tuple[FieldPath, Problem]]:
    """Every schema problem of ``doc.value``, located in its file, with its field path."""
    problems: list[tuple[FieldPath, Problem]] = []
    for error in _validator(kind).iter_errors(doc.value):
        for path, at_key, message in _messages(error, doc):
            if any(path[: len(bad)] == bad for bad in doc.bad_paths):
                continue
            location = doc.locate_key(path) if at_key else doc.locate(path)
            problems.append((path, Problem(location, format_path(path), message)))
    return problems


def validate(doc: YamlDoc, kind: SchemaKind) -> list[Problem]:
    """Every schema problem of ``doc.value``, located in its file."""
    return [problem for _, problem in validate_paths(doc, kind)]
