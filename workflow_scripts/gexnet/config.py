"""Configuration: JSON-Schema validation that fills defaults and names the offending key."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from gexnet.errors import GexnetError

# Package data (config/config.schema.yaml links here), so installed copies carry it too.
SCHEMA = Path(__file__).resolve().parent / "data" / "config.schema.yaml"


class ConfigError(GexnetError):
    """The configuration does not match the schema."""


def _with_defaults(validator_class: type) -> type:
    """A validator that fills each missing property with its schema default while validating."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema) -> Iterator:
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if "default" in subschema and key not in instance:
                    instance[key] = _copy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _copy(value: Any) -> Any:
    # Defaults must not be shared between configs: nested dicts are filled in place.
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        patterns = error.schema.get("patternProperties", {})
        unknown = sorted(
            k
            for k in error.instance
            if k not in allowed and not any(re.search(p, k) for p in patterns)
        )
        names = ", ".join(f"'{'.'.join(filter(None, [key, k]))}'" for k in unknown)
        choices = ", ".join(sorted(allowed)) or "none"
        return f"unknown config key {names} (allowed here: {choices})"
    return f"config key '{key or '<top level>'}': {error.message}"


def schema(schema_path: str | os.PathLike = SCHEMA) -> dict:
    """The schema, with each `x-overrides: <section>` object given that section's keys (the same
    types and checks, no defaults: an override holds only what it changes)."""
    rules = yaml.safe_load(Path(schema_path).read_text())

    def expand(node):
        if isinstance(node, dict):
            if "x-overrides" in node:
                section = rules["properties"][node.pop("x-overrides")]
                node["additionalProperties"] = False
                node["properties"] = {
                    k: {key: v for key, v in sub.items() if key != "default"}
                    for k, sub in section["properties"].items()
                }
            for value in node.values():
                expand(value)
        elif isinstance(node, list):
            for value in node:
                expand(value)

    expand(rules)
    return rules


def experiment_settings(config: dict, name: str, table: str = "experiments") -> dict:
    """Entry `name` of `table` (experiments: a gene language model; autoencoders) with its
    effective model and `train` sections: the run's, with the entry's own keys on top."""
    entry = dict(config[table][name])
    for section in (MODEL_SECTIONS[table], "train"):
        entry[section] = {**config[section], **entry.get(section, {})}
    return entry


MODEL_SECTIONS = {
    "experiments": "gene_lm",
    "autoencoders": "autoencoder",
    "splicing_models": "splicing_network",
}


def typed_overrides(overrides: dict, schema: dict) -> dict:
    """`--config` values typed as the schema types them.

    Snakemake reads a nested `--config` value (`train={epochs: 1}`) with YAML's BaseLoader, so
    every scalar in it arrives as a string ('1'); a string where the schema expects no string
    (a number, an integer, a boolean, null) is read again as YAML, so that the override means
    what it says. Strings the schema wants as strings ("2.2") stay as they are, and a number
    where the schema wants text (`run=2`) becomes text.
    """

    def typed(value: Any, node: dict) -> Any:
        if isinstance(value, dict):
            return {k: typed(v, _child(node, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [typed(v, node.get("items", {})) for v in value]
        kinds = node.get("type", [])
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if kinds == ["string"] and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # `--config run=2`: Snakemake made it a number
        if not isinstance(value, str) or not kinds or "string" in kinds:
            return value
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value  # validation names the key
        if isinstance(parsed, str):  # YAML 1.1 reads 1e-4 as text; the schema wants a number
            with contextlib.suppress(ValueError):
                return float(parsed)
        return parsed

    return typed(overrides, schema)


def _child(node: dict, key: str) -> dict:
    """The schema of `key` inside the object schema `node` (empty when it has none)."""
    if key in node.get("properties", {}):
        return node["properties"][key]
    for pattern, sub in node.get("patternProperties", {}).items():
        if re.search(pattern, key):
            return sub
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def validate(config: dict, schema_path: str | os.PathLike = SCHEMA) -> dict:
    """Validate `config` in place, filling defaults; raise ConfigError naming the key."""
    errors = _errors(config, schema(schema_path))
    if errors:
        raise ConfigError("; ".join(dict.fromkeys(_describe(e) for e in errors)))
    _check_experiments(config.get("experiments", {}))
    return config


def _check_experiments(experiments: dict) -> None:
    """What the schema cannot say clearly: the pseudo-species control splits one species."""
    for name, experiment in experiments.items():
        if experiment.get("pseudo_species") and isinstance(experiment.get("species"), list):
            raise ConfigError(
                f"config key 'experiments.{name}.pseudo_species': the pseudo-species control "
                f"splits one species' samples in two; species is {experiment['species']} "
                "(set one species, or pseudo_species: false)"
            )


def _errors(config: dict, rules: dict) -> list[jsonschema.ValidationError]:
    """The schema's complaints about `config`, whose missing keys it fills with defaults."""
    cls = _with_defaults(jsonschema.validators.validator_for(rules))
    return sorted(cls(rules).iter_errors(config), key=lambda e: list(e.absolute_path))


def resolve(
    files: list[str | os.PathLike | dict], overrides: dict | None = None,
    schema_path: str | os.PathLike = SCHEMA,
) -> dict:  # fmt: skip
    """The config a run uses, in this order: the `files` (paths, or configs already read; each
    deep-merged over the one before, as Snakemake merges several --configfile), the schema's
    defaults for every key they leave out, then `overrides` (`--config`, typed by the schema)
    deep-merged on top; validated. A dictionary in the files replaces its default
    (`experiments: {}` means none), while an override merges into what is there."""
    rules = schema(schema_path)
    config: dict = {}
    for item in files:
        _merge(config, item if isinstance(item, dict) else _read(item))
    _errors(config, rules)  # fills the defaults; what is wrong is judged after the overrides
    _merge(config, typed_overrides(overrides or {}, rules))
    return validate(config, schema_path)


def _read(path: str | os.PathLike) -> dict:
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read config: {e}") from e
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: config must be a mapping of keys to values")
    return config


def _merge(config: dict, update: dict) -> None:
    """Deep-merge `update` into `config` (dictionaries merge, anything else replaces)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            _merge(config[key], value)
        else:
            config[key] = _copy(value)


def argument(text: str) -> dict | Path:
    """A config given whole: inline JSON (as the rules pass the run's sections) or the path of
    a YAML/JSON file."""
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"--config: not valid JSON: {e}") from e
        if not isinstance(value, dict):
            raise ConfigError(f"--config: expected a JSON object, got {text!r}")
        return value
    return Path(text)


_SETTING = re.compile(r"([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)=(.*)", re.DOTALL)


def from_arguments(texts: list[str], schema_path: str | os.PathLike = SCHEMA) -> dict:
    """The config of a gexnet command from its `--config` arguments. Each is a whole config
    (a file, or inline JSON), merged in order as several `--configfile` are, or one setting
    KEY=VALUE with a dotted key (`block_values=1000`, `download.retries=3`), applied on top
    and typed by the schema as `snakemake --config` values are; then the defaults; validated."""
    files: list[dict | Path] = []
    settings: dict = {}
    for text in texts:
        setting = _SETTING.fullmatch(text)
        if setting is None:
            files.append(argument(text))
            continue
        *parents, last = setting.group(1).split(".")
        node = settings
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--config {text}: {key} is given a value and keys")
        node[last] = setting.group(2)
    return resolve(files, settings, schema_path)


def load(path: str | os.PathLike, schema_path: str | os.PathLike = SCHEMA) -> dict:
    """Read a YAML config file and validate it: what `--configfile path` runs with."""
    return resolve([path], {}, schema_path)
