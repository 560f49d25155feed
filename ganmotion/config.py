"""Typed configs from YAML: dataclasses are the schema, files and overrides are instances.

    config = load_config(TrainConfig, "configs/gan_512.yaml", ["optim.critic_lr=2e-4"])

Every key in a file or an override must be a field of the dataclass it lands in (unknown
keys are errors that list the valid ones); values are checked against the field types; a
missing section or key keeps its default. `config_to_dict` gives back plain JSON-able data,
which is what is printed and saved beside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ganmotion.errors import GanmotionError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a numeric config key accepts: low/high bounds, each included or not."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"in {left}{self.low:g}, {self.high:g}{right}"


def ranged(
    default: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """A dataclass field with a default and the range its value (or each item of a tuple
    of numbers) must lie in; `check_ranges` and `load_config` enforce it. None passes."""
    return dataclasses.field(
        default=default, metadata={"range": Range(low, high, low_open, high_open)}
    )


def field_range(field: dataclasses.Field) -> Range | None:
    return field.metadata.get("range")


def check_ranges(instance: Any, prefix: str = "") -> None:
    """Raise a GanmotionError naming the first field of a config dataclass whose value lies
    outside its declared range: "batch_size must be >= 1, got 0" (`prefix` goes first)."""
    values = {f.name: getattr(instance, f.name) for f in dataclasses.fields(instance)}
    _check_ranges(type(instance), values, prefix)


def _check_ranges(cls: type, values: dict, prefix: str, where: str = "") -> None:
    for field in dataclasses.fields(cls):
        allowed, value = field_range(field), values.get(field.name)
        if allowed is None or value is None:
            continue
        for item in value if isinstance(value, tuple) else (value,):
            if item != item or item not in allowed:  # NaN lies in no range
                place = f"{where}: " if where else ""
                raise GanmotionError(
                    f"{place}{prefix}{field.name} must be {allowed}, got {value!r}"
                )


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] = ()) -> T:
    """Build a `cls` from a YAML file (optional) and `key.sub=value` overrides, in that order."""
    data: dict = {}
    where = "config"
    if path is not None:
        path = Path(path)
        where = str(path)
        if not path.is_file():
            raise GanmotionError(f"{path}: config file does not exist")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as error:  # a binary file given as the config
            raise GanmotionError(f"{path}: not a readable YAML file ({error})") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f" at line {mark.line + 1}" if mark else ""
            raise GanmotionError(f"{path}: not valid YAML{line}") from None
        if not isinstance(data, dict):
            raise GanmotionError(
                f"{path}: expected a mapping of sections, got {type(data).__name__}"
            )
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key:
            raise GanmotionError(f"override {override!r}: expected key.sub=value")
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise GanmotionError(f"override {override!r}: {part} is not a section")
        node[leaf] = yaml.safe_load(value) if value else None
    return from_dict(cls, data, where)


def from_dict(cls: type[T], data: dict, where: str = "config", prefix: str = "") -> T:
    """`cls(**data)` with nested dataclasses built recursively and every value type-checked."""
    if not isinstance(data, dict):
        raise GanmotionError(f"{where}: {prefix.rstrip('.') or 'top level'} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise GanmotionError(
            f"{where}: unknown key {prefix}{unknown[0]} (valid keys here: {', '.join(fields)})"
        )
    required = [
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if name not in data]
    if missing:
        raise GanmotionError(f"{where}: missing key {prefix}{missing[0]}")
    values = {}
    for name, value in data.items():
        values[name] = _convert(hints[name], value, where, f"{prefix}{name}")
    # Checked here too, not only in __post_init__, so that the message names the full key.
    _check_ranges(cls, values, prefix, where)
    try:
        return cls(**values)
    except GanmotionError as error:
        raise GanmotionError(f"{where}: {error}") from None
    except TypeError as error:  # a required field left out
        raise GanmotionError(f"{where}: {prefix.rstrip('.') or cls.__name__}: {error}") from None


def _convert(hint: Any, value: Any, where: str, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value if value is not None else {}, where, f"{key}.")
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where, key)
            except GanmotionError as error:
                errors.append(error)
        raise errors[0]
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            choices = ", ".join(map(str, typing.get_args(hint)))
            raise GanmotionError(f"{where}: {key} must be one of {choices}, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise GanmotionError(f"{where}: {key} must be a mapping, got {value!r}")
        key_type, value_type = typing.get_args(hint)
        return {
            _convert(key_type, k, where, key): _convert(value_type, v, where, f"{key}.{k}")
            for k, v in value.items()
        }
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise GanmotionError(f"{where}: {key} must be a list, got {value!r}")
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise GanmotionError(f"{where}: {key} must have {len(args)} items, got {value!r}")
            return tuple(_convert(a, v, where, key) for a, v in zip(args, value))
        item = args[0] if args else Any
        return origin(_convert(item, v, where, key) for v in value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is Any or (isinstance(hint, type) and isinstance(value, hint)):
        if hint is int and isinstance(value, bool):
            raise GanmotionError(f"{where}: {key} must be an integer, got {value!r}")
        return value
    name = getattr(hint, "__name__", str(hint))
    raise GanmotionError(f"{where}: {key} must be {name}, got {value!r}")


def config_to_dict(config: Any) -> dict:
    """Plain data (dicts, lists, numbers, strings) for JSON and YAML."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
