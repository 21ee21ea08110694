"""Registries of pluggable kinds: scenario sections chosen by their ``kind``.

A pluggable part of a run (a char-RNN task, a deletion selector) has one
:class:`Registry`: each ``kind`` maps to a config section (a pydantic model,
usually a :class:`~neurograph.schema.Strict` one, whose ``kind`` field is a
``Literal`` with that default) and a builder that turns a validated section
into the object the trainer uses. The scenario schema's field for that part
is :attr:`Registry.field`: it validates a mapping against the section
registered under the mapping's ``kind``, at validation time, so a kind
registered from user code is named in YAML like a built-in one, and a wrong
field in it is reported with its full path (``structure.selector.alpha``).
An unknown kind is one line that lists the accepted ones.

>>> from typing import Literal
>>> from neurograph.schema import Strict
>>> shapes = Registry("shape")
>>> class Square(Strict):
...     kind: Literal["square"] = "square"
...     side: float = 1.0
>>> _ = shapes.register(Square, lambda config: config.side**2)
>>> shapes.build(Square(side=3.0))
9.0
>>> shapes.kinds()
['square']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Callable

from pydantic import BaseModel
from pydantic_core import PydanticCustomError, core_schema

__all__ = ["Registry", "RegistryError", "field_registry"]


class RegistryError(ValueError):
    """A kind that cannot be registered or built."""


@dataclass(frozen=True)
class _Entry:
    config: type[BaseModel]
    build: Callable[..., Any]
    builtin: bool


class Registry:
    """Kinds of one pluggable part: kind -> (config section, builder). ``what`` names the part in messages."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, _Entry] = {}

    # ----------------------------------------------------------- registering
    def register(
        self, config: type[BaseModel], build: Callable[..., Any], *, replace: bool = False, builtin: bool = False
    ) -> type[BaseModel]:
        """Register ``config`` (its ``kind`` default names it) with ``build(config, ...)``; returns ``config``.

        A kind already registered is an error unless ``replace`` (a built-in
        kind is never replaced). ``builtin`` marks neurograph's own kinds.
        """
        kind = _kind_of(config, self.what)
        old = self._entries.get(kind)
        if old is not None and (old.builtin or not replace):
            why = "a built-in kind" if old.builtin else "already registered (pass replace=True to replace it)"
            raise RegistryError(f"{self.what} kind {kind!r} is {why}")
        if not callable(build):
            raise RegistryError(f"{self.what} kind {kind!r}: build must be callable, got {build!r}")
        self._entries[kind] = _Entry(config, build, builtin)
        return config

    def unregister(self, kind: str) -> None:
        """Forget a kind registered by user code (built-in kinds stay)."""
        entry = self._entries.get(kind)
        if entry is None:
            raise RegistryError(f"no {self.what} kind {kind!r} is registered")
        if entry.builtin:
            raise RegistryError(f"{self.what} kind {kind!r} is a built-in kind")
        del self._entries[kind]

    # --------------------------------------------------------------- queries
    def kinds(self, *, builtin_only: bool = False) -> list[str]:
        """Registered kinds, in registration order (built-in ones first)."""
        return [k for k, e in self._entries.items() if e.builtin or not builtin_only]

    def config(self, kind: str) -> type[BaseModel]:
        """The config section registered under ``kind``."""
        return self._entry(kind).config

    def build(self, config: BaseModel, *args: Any, **kwargs: Any) -> Any:
        """The object ``config``'s kind builds: ``build(config, *args, **kwargs)``."""
        entry = self._entry(getattr(config, "kind", None))
        if not isinstance(config, entry.config):
            raise RegistryError(f"{self.what} config {config!r} is not a {entry.config.__name__}")
        return entry.build(config, *args, **kwargs)

    def _entry(self, kind: Any) -> _Entry:
        entry = self._entries.get(kind) if isinstance(kind, str) else None
        if entry is None:
            raise RegistryError(f"unknown {self.what} kind {kind!r}; accepted: {self._accepted()}")
        return entry

    def _accepted(self) -> str:
        return ", ".join(self._entries)

    # -------------------------------------------------------------- pydantic
    @property
    def field(self) -> Any:
        """Annotation of a schema field that holds one section of any registered kind."""
        return Annotated[BaseModel, _KindField(self)]

    def validate(self, value: Any) -> BaseModel:
        """``value`` (a mapping with ``kind``, or a section) as the section its kind registered."""
        if isinstance(value, BaseModel):
            entry = self._entries.get(getattr(value, "kind", None))
            if entry is not None and isinstance(value, entry.config):
                return value
            raise self._error("unknown_kind", f"{type(value).__name__} is not a registered {self.what} section")
        if not isinstance(value, dict):
            raise self._error("kind_missing", f"expected a mapping with a kind, got {type(value).__name__}")
        if "kind" not in value:
            raise self._error("kind_missing", f"a {self.what} needs a kind")
        kind = value["kind"]
        entry = self._entries.get(kind) if isinstance(kind, str) else None
        if entry is None:
            raise self._error("unknown_kind", f"unknown {self.what} kind {kind!r}")
        return entry.config.model_validate(value)

    def _error(self, kind: str, message: str) -> PydanticCustomError:
        # the text goes in through the context: braces in a user's value are not a template
        return PydanticCustomError(kind, "{message}; accepted: {accepted}", {"message": message, "accepted": self._accepted()})


@dataclass(frozen=True)
class _KindField:
    """pydantic hooks of :attr:`Registry.field`: validate through the registry, schema of every kind."""

    registry: Registry

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.registry.validate)

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict:
        members = [handler(self.registry.config(k).__pydantic_core_schema__) for k in self.registry.kinds()]
        return {"oneOf": members, "discriminator": {"propertyName": "kind"}}


def field_registry(field: Any) -> Registry | None:
    """The registry behind a pydantic ``FieldInfo`` declared with :attr:`Registry.field`, else None."""
    marks = [m.registry for m in getattr(field, "metadata", ()) if isinstance(m, _KindField)]
    return marks[0] if marks else None


def _kind_of(config: Any, what: str) -> str:
    """The kind a config section names itself by: its ``kind`` field's string default."""
    field = getattr(config, "model_fields", {}).get("kind") if isinstance(config, type) else None
    kind = getattr(field, "default", None)
    if not isinstance(config, type) or not issubclass(config, BaseModel) or not isinstance(kind, str):
        raise RegistryError(
            f"a {what} config must be a pydantic model with a field like kind: Literal['name'] = 'name', got {config!r}"
        )
    return kind
