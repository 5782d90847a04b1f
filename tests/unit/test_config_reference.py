"""docs/config.md and `vcyclectl config schema` come from the config dataclasses: the
reference must be current, the schema must be a valid JSON Schema that accepts every shipped
example and rejects what the loader rejects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import importlib
from vcyclectl.config.policy import POLICY_KEYS
from vcyclectl.config.reference import json_schema, tree
from vcyclectl.config.referencedoc import markdown

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
REGENERATE = "python -m vcyclectl.config.reference > docs/config.md"


class _PlainLoader(yaml.SafeLoader):
    """YAML as an editor's language server sees it: dates stay strings."""


_PlainLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _yaml(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_PlainLoader)  # noqa: S506 (a SafeLoader)


def _validator(ref: str | None = None) -> jsonschema.Draft7Validator:
    schema = json_schema()
    if ref is not None:
        schema = {**schema, "$ref": f"#/$defs/{ref}"}
        schema.pop("properties"), schema.pop("required", None)
        schema.pop("additionalProperties")
    return jsonschema.Draft7Validator(schema)


def _example_configs() -> list[Path]:
    return [p for p in sorted(EXAMPLES.glob("*.yaml"))
            if isinstance(_yaml(p), dict) and "spaces" in _yaml(p)]


def test_docs_config_md_is_current() -> None:
    current = (ROOT / "docs" / "config.md").read_text()
    assert current == markdown(tree()), f"docs/config.md is stale: run `{REGENERATE}`"


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft7Validator.check_schema(json_schema())


def test_there_are_example_configs() -> None:
    assert len(_example_configs()) >= 3


@pytest.mark.parametrize("path", _example_configs(), ids=lambda p: p.name)
def test_every_example_config_matches_the_schema(path: Path) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in _validator().iter_errors(_yaml(path))]
    assert errors == []


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("machinetypes/*/machinetype.yaml")),
                         ids=lambda p: p.parent.name)
def test_every_example_machinetype_matches_the_schema(path: Path) -> None:
    validator = _validator("machinetype")
    for name, settings in _yaml(path).items():
        errors = [f"{name}.{list(e.absolute_path)}: {e.message}"
                  for e in validator.iter_errors(settings)]
        assert errors == []


@pytest.mark.parametrize("mistake, where", [
    ({"min_procesors": 2}, "min_procesors"),          # a typo: unknown key
    ({"min_processors": 0}, "min_processors"),        # below the field's min
    ({"target_share": "lots"}, "target_share"),       # wrong type
    ({"local": {"boot_secs": 1}}, "boot_secs"),       # a typo inside the cloud block
])
def test_the_schema_rejects_what_the_loader_rejects(mistake: dict[str, Any], where: str) -> None:
    config = _yaml(EXAMPLES / "quickstart.yaml")
    space = next(iter(config["spaces"].values()))
    machinetype = next(iter(space["machinetypes"].values()))
    machinetype.update(mistake)
    messages = [str(e) for e in _validator().iter_errors(config)]
    assert messages and any(where in m for m in messages)


def test_a_space_without_cloud_is_rejected() -> None:
    config = _yaml(EXAMPLES / "quickstart.yaml")
    next(iter(config["spaces"].values())).pop("cloud")
    assert list(_validator().iter_errors(config))


def test_every_key_the_loader_parses_by_hand_is_in_the_reference() -> None:
    """A block the loader handles itself (not a dataclass field) must be added to
    `config.reference.tree()`, or editors and docs/config.md would not know it."""
    load = importlib.import_module("vcyclectl.config.load")
    defs = json_schema()["$defs"]
    assert POLICY_KEYS | {"defaults", "spaces", "accounting"} <= set(json_schema()["properties"])
    assert load._SPACE_SPECIAL <= set(defs["space"]["properties"])
    from vcyclectl.config.types import SPACE_DEFAULT_KEYS

    assert load._MT_SPECIAL - {"name", "cloud_options"} - SPACE_DEFAULT_KEYS <= \
        set(defs["machinetype"]["properties"])
    assert SPACE_DEFAULT_KEYS <= set(defs["defaults"]["properties"])  # not a machinetype's


def test_config_schema_command_prints_the_schema() -> None:
    done = subprocess.run([sys.executable, "-m", "vcyclectl", "config", "schema"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(json.dumps(json_schema()))
