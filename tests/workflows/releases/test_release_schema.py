"""manifest.json against its JSON schema: the project's checker agrees with the jsonschema package."""

from __future__ import annotations

import copy
import json

import pytest

from iea_data.workflows.releases import (
    MANIFEST_SCHEMA_PATH,
    ManifestSchemaError,
    build_release,
    validate_manifest,
)
from iea_data.workflows.releases._schema import schema_errors


@pytest.fixture
def manifest(demo_ws):
    build_release(demo_ws, "m", "1.0.0", labels="refdiff")
    return json.loads((demo_ws.releases_dir / "m" / "1.0.0" / "manifest.json").read_text())


MUTATIONS = [
    ("no version", lambda m: m.pop("version")),
    ("bad version", lambda m: m.update(version="1.0")),
    ("bad sha", lambda m: m["files"][0].update(sha256="XYZ")),
    ("negative size", lambda m: m["files"][0].update(size=-1)),
    ("unknown policy", lambda m: m["label_policy"].update(labels="gold")),
    ("unknown field", lambda m: m.update(extra=1)),
    ("schema version", lambda m: m.update(manifest_schema=2)),
    ("files not a list", lambda m: m.update(files={})),
    ("absolute path", lambda m: m["files"][0].update(path="/etc/passwd")),
]


def test_a_built_manifest_is_valid_for_both_checkers(manifest):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(MANIFEST_SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(manifest, schema)
    assert schema_errors(manifest, schema) == []


@pytest.mark.parametrize("what,mutate", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_broken_manifests_fail_both_checkers(manifest, what, mutate):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(MANIFEST_SCHEMA_PATH.read_text())
    broken = copy.deepcopy(manifest)
    mutate(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    with pytest.raises(ManifestSchemaError, match=r"\$"):
        validate_manifest(broken)
