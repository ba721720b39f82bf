"""Validates JSON the gateway emits against OpenAI's published OpenAPI
description (../shared/openai/openapi.json, OpenAPI 3.1 with some 3.0-style
`nullable` left in). `nullable: true` is rewritten into JSON Schema's own
form (null added to the type and to any enum) so a 2020-12 validator reads
the document as OpenAI means it."""
import functools
import json
import lzma
import os

import jsonschema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.environ.get("OPENAI_OPENAPI",
                      os.path.join(ROOT, "tests", "integration", "data", "openai-openapi.json.xz"))


def _fix_nullable(node):
    if isinstance(node, dict):
        if node.get("nullable") is True:
            t = node.get("type")
            if isinstance(t, str):
                node["type"] = [t, "null"]
            elif isinstance(t, list) and "null" not in t:
                node["type"] = t + ["null"]
            elif t is None and "$ref" in node:
                ref = {"$ref": node.pop("$ref")}
                node["anyOf"] = [ref, {"type": "null"}]
            if isinstance(node.get("enum"), list) and None not in node["enum"]:
                node["enum"] = node["enum"] + [None]
        for v in node.values():
            _fix_nullable(v)
    elif isinstance(node, list):
        for v in node:
            _fix_nullable(v)


@functools.lru_cache(maxsize=1)
def _document():
    opener = lzma.open if SPEC.endswith(".xz") else open
    with opener(SPEC, "rt") as f:
        doc = json.load(f)
    _fix_nullable(doc)
    return doc


@functools.lru_cache(maxsize=None)
def _validator(name):
    doc = _document()
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    cls = jsonschema.validators.validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema"})
    return cls(schema)


def validate(name, instance):
    """Raises jsonschema.ValidationError when |instance| is not a |name|."""
    errors = sorted(_validator(name).iter_errors(instance), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        raise AssertionError(f"not a valid {name} at {list(e.path)}: {e.message}\n"
                             f"{json.dumps(instance)[:2000]}")


def has_schema(name):
    return name in _document()["components"]["schemas"]
