"""A small registry: components register under a short, stable name.

Names are the user-facing vocabulary (`encoder=rnn`), the Python file stem and
the YAML file stem all at once, so one word finds the code, the config and the
checkpoint entry. Duplicate names raise instead of silently shadowing.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import typing
from typing import Any, Callable, Generic, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is unknown, mistyped or impossible; names the key."""


@dataclasses.dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    component: type[T]
    config: type


class Registry(Generic[T]):
    """Maps names to (component class, frozen config dataclass).

    Args:
      kind: the config group the components are chosen from ("encoder").
      package: the package whose modules define them; a component named
        `foo` lives in `<package>.foo`, so adding one needs no edit elsewhere.
    """

    def __init__(self, kind: str, package: str):
        self.kind = kind
        self.package = package
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, config: type) -> Callable[[type[T]], type[T]]:
        if not dataclasses.is_dataclass(config):
            raise TypeError(f"{self.kind} '{name}': config must be a dataclass, got {config!r}")

        def wrap(component: type[T]) -> type[T]:
            if name in self._entries:
                raise ValueError(
                    f"{self.kind} '{name}' is registered twice "
                    f"({self._entries[name].component.__module__} and {component.__module__})"
                )
            self._entries[name] = Entry(name, component, config)
            # The schema Hydra checks the YAML against at composition time:
            # `conf/<kind>/<name>.yaml` starts with `defaults: [<name>_schema, _self_]`.
            ConfigStore.instance().store(group=self.kind, name=f"{name}_schema", node=schema(config, name))
            return component

        return wrap

    def import_all(self) -> None:
        """Imports every module of the package so that all schemas are known to Hydra."""
        for name in self.names():
            importlib.import_module(f"{self.package}.{name}")

    def names(self) -> list[str]:
        pkg = importlib.import_module(self.package)
        found = {m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")}
        return sorted(found | set(self._entries))

    def get(self, name: str) -> Entry[T]:
        if name not in self._entries and name in self.names():
            importlib.import_module(f"{self.package}.{name}")
        if name not in self._entries:
            raise ConfigError(
                f"unknown {self.kind} '{name}'; registered {self.kind}s: {', '.join(self.names())}"
            )
        return self._entries[name]

    def config(self, name: str, values: dict | DictConfig) -> Any:
        """Builds the frozen config of `name` strictly from `values`.

        Unknown keys, wrong types and impossible values raise ConfigError
        naming `<kind>.<key>`, before anything is compiled.
        """
        entry = self.get(name)
        values = OmegaConf.to_container(values, resolve=True) if isinstance(values, DictConfig) else dict(values)
        values.pop("name", None)
        return build_dataclass(entry.config, values, prefix=self.kind)

    def build(self, name: str, values: dict | DictConfig, **module_kwargs) -> T:
        entry = self.get(name)
        return entry.component(config=self.config(name, values), **module_kwargs)


def build_dataclass(cls: type, values: dict, prefix: str) -> Any:
    """Type-checked construction of a frozen config dataclass from plain values."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(_writable(OmegaConf.structured(cls)), values))
    except ConfigError as e:
        raise ConfigError(f"{prefix}.{e}") from None
    except Exception as e:  # omegaconf's errors carry the key; keep its text, add the group
        key = getattr(e, "full_key", None) or getattr(e, "key", None)
        msg = (getattr(e, "msg", None) or str(e)).splitlines()[0]
        where = f"{prefix}.{key}" if key else prefix
        raise ConfigError(f"{where}: {msg}") from None


def _writable(node: DictConfig) -> DictConfig:
    """`node` with the read-only flag that frozen dataclasses give it (and each nested config) lifted,
    so values merge in; `to_object` then builds the frozen dataclasses again."""
    OmegaConf.set_readonly(node, False)
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _writable(child)
    return node


def check(condition: bool, key: str, message: str) -> None:
    """Raises ConfigError for `key` when `condition` fails; used in __post_init__."""
    if not condition:
        raise ConfigError(f"{key}: {message}")


def schema(config: type, name: str | None = None, hashable: bool = False) -> type:
    """A mutable twin of a frozen config dataclass for Hydra to merge YAML into
    (OmegaConf makes frozen dataclasses read-only); with `name`, it also carries
    the component's name so that a saved config says what it built."""
    hints = typing.get_type_hints(config)
    fields = []
    for f in dataclasses.fields(config):
        if dataclasses.is_dataclass(hints[f.name]):  # a nested config (model.embeddings): its own mutable twin
            # An instance default, not a default_factory: the joblib launcher sends the ConfigStore to its workers
            # with cloudpickle, which copies dataclasses.MISSING, so a factory field's `default` no longer reads as
            # missing there and OmegaConf takes the copied sentinel for the value (every sweep job failed to
            # compose). The twin is hashable so that dataclasses accept the instance; OmegaConf copies it per node.
            twin = schema(hints[f.name], hashable=True)
            fields.append((f.name, twin, dataclasses.field(default=twin())))
        else:
            fields.append((f.name, hints[f.name], dataclasses.field(default=f.default)))
    if name is not None:
        fields = [("name", str, dataclasses.field(default=name))] + fields
    return dataclasses.make_dataclass(f"{config.__name__}Schema", fields, unsafe_hash=hashable)
