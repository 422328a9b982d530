"""The one base every Kenar model shares: validation rules and the generated-style helpers."""

from __future__ import annotations

import json
import pprint
import types
import typing
from enum import Enum
from typing import Any, ClassVar, Dict, FrozenSet, Iterator, List, Optional, Tuple, Union, get_args, overload

import typing_extensions
from pydantic import BaseModel, ConfigDict, ValidationError
from typing_extensions import Self

from kenar_api_client.models._enum import reading_answer

#: Where in a model a value sits: field names, list indexes, dict keys.
Location = Tuple[Union[str, int], ...]


class KenarModel(BaseModel):
    """Base of all request and response models.

    Two rules shape it:

    * Building a model by keyword (``Model(field=...)``) rejects names the model does not
      know, in nested dicts too, so a typo fails loudly instead of being sent and ignored.
    * Parsing what the server (or a webhook) sent (``from_dict``/``from_json``) keeps
      unknown fields: Kenar's Events API is experimental and grows new fields, and a
      client must not break on them. They are available as ``model.additional_properties``
      and are sent back unchanged by ``to_dict``/``to_json``. Enum values it does not know
      are kept too (see ``KenarEnum``).

    A field of enum type ``E`` is annotated ``Union[E, Literal["V1", "V2", ...]]`` with the
    values of ``E``, so that type checkers accept the plain strings the docs use
    (``event_type="POST_UPDATE"``). pydantic validates it as ``E`` alone (see
    ``__init_subclass__``): a string becomes the member, and a wrong value gets one error
    listing the values.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(
        populate_by_name=True,
        validate_assignment=True,
        extra="allow",
        protected_namespaces=(),
    )

    # Set to False by schemas whose OpenAPI definition allows arbitrary extra keys.
    _reject_unknown_keywords: ClassVar[bool] = True
    _known_keywords: ClassVar[FrozenSet[str]] = frozenset()
    # The fields whose values may hold other models (checked for unknown keys on build).
    _model_fields: ClassVar[Tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Runs inside class creation, before pydantic reads the annotations to build fields.
        super().__init_subclass__(**kwargs)
        # The class's own dict, changed in place: that is the one pydantic reads.
        annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
        for name, annotation in annotations.items():
            annotations[name] = enum_for_validation(annotation, f"{cls.__name__}.{name}")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        names = set(cls.model_fields)
        names.update(f.alias for f in cls.model_fields.values() if f.alias)
        cls._known_keywords = frozenset(names)
        cls._model_fields = tuple(
            name for name, field in cls.model_fields.items() if _mentions_a_model(field.annotation)
        )

    def __init__(self, /, **data: Any) -> None:
        if self._reject_unknown_keywords and not data.keys() <= self._known_keywords:
            unknown = sorted(data.keys() - self._known_keywords)
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [{"type": "extra_forbidden", "loc": (name,), "input": data[name]} for name in unknown],
            )
        super().__init__(**data)
        if self._model_fields:
            # Nested dicts were parsed the way answers are (unknown keys kept): refuse them.
            raise_unknown_fields(type(self).__name__, (), self, top_level=False)

    # Our __init__ only vets keyword names before the usual validation, so pydantic may treat
    # it as its own: parsing (model_validate, nested dicts) then stays on pydantic's fast path
    # and never runs the keyword check. pydantic's RootModel uses the same marker.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @property
    def additional_properties(self) -> Dict[str, Any]:
        """Fields the server sent that this version of the SDK does not know."""
        return dict(self.__pydantic_extra__ or {})

    def to_dict(self) -> Dict[str, Any]:
        """The model as a JSON-ready dict with wire names, leaving out fields that were never set."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def to_json(self) -> str:
        """The model as a JSON string with wire names, leaving out fields that were never set."""
        return self.model_dump_json(by_alias=True, exclude_unset=True)

    def to_str(self) -> str:
        """A readable, pretty-printed form of ``to_dict()``."""
        return pprint.pformat(self.to_dict())

    @overload
    @classmethod
    def from_dict(cls, obj: Dict[str, Any]) -> Self: ...

    @overload
    @classmethod
    def from_dict(cls, obj: None) -> None: ...

    @classmethod
    def from_dict(cls, obj: Optional[Dict[str, Any]]) -> Optional[Self]:
        """Build the model from a dict as received on the wire; ``None`` gives ``None``."""
        if obj is None:
            return None
        return cls._from_answer(obj)

    @classmethod
    def from_json(cls, json_str: Union[str, bytes]) -> Optional[Self]:
        """Build the model from JSON text as received on the wire; ``null`` gives ``None``.

        Anything else but an object raises ``pydantic.ValidationError``.
        """
        document: Optional[Dict[str, Any]] = json.loads(json_str)
        return cls.from_dict(document)

    @classmethod
    def _from_answer(cls, document: Any) -> Self:
        token = reading_answer.set(True)
        try:
            return cls.model_validate(document)
        finally:
            reading_answer.reset(token)


def _mentions_a_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, KenarModel):
        return True
    return any(_mentions_a_model(argument) for argument in get_args(annotation))


def unknown_fields(value: Any, top_level: bool = True) -> Iterator[Tuple[Location, Any]]:
    """Where ``value`` (a model, or a list or dict of them) holds keys its schema does not know.

    Only models that reject unknown keywords count; ``top_level=False`` skips ``value``'s
    own keys (already checked) and looks only inside its fields.
    """
    if isinstance(value, KenarModel):
        if top_level and value._reject_unknown_keywords:
            for key, item in (value.__pydantic_extra__ or {}).items():
                yield (key,), item
        for name in value._model_fields:
            for location, item in unknown_fields(getattr(value, name)):
                yield (name, *location), item
    elif isinstance(value, (list, tuple)):
        for index, element in enumerate(value):
            for location, item in unknown_fields(element):
                yield (index, *location), item
    elif isinstance(value, dict):
        for key, element in value.items():
            for location, item in unknown_fields(element):
                yield (key, *location), item


def raise_unknown_fields(title: str, prefix: Location, value: Any, top_level: bool = True) -> None:
    """``ValidationError`` (titled ``title``) naming each unknown key in ``value``, if any."""
    errors: List[Any] = [
        {"type": "extra_forbidden", "loc": (*prefix, *location), "input": item}
        for location, item in unknown_fields(value, top_level)
    ]
    if errors:
        raise ValidationError.from_exception_data(title, errors)


_LITERALS = (typing.Literal, typing_extensions.Literal)
_UNIONS = (Union, getattr(types, "UnionType", Union))  # X | Y is a types.UnionType from 3.10 on


def enum_for_validation(annotation: Any, where: str) -> Any:
    """``annotation`` with each ``Union[E, Literal[<values of E>]]`` in it narrowed to ``E``.

    Keeps ``None`` and other union members (``Optional[E]``) and looks inside ``List``,
    ``Dict`` and ``Annotated``. A ``Literal`` that does not list exactly the values of the
    enum beside it is a mistake in the model: ``TypeError`` naming ``where``.
    """
    origin = typing_extensions.get_origin(annotation)
    args = typing_extensions.get_args(annotation)
    if origin is None or not args:
        return annotation
    if origin is typing_extensions.Annotated:
        inner = enum_for_validation(args[0], where)
        if inner is args[0]:
            return annotation
        params = (inner, *annotation.__metadata__)
        return typing_extensions.Annotated[params]
    narrowed = tuple(enum_for_validation(arg, where) for arg in args)
    if origin in _UNIONS:
        narrowed = _drop_enum_literal(narrowed, where)
        if narrowed == args:
            return annotation
        return Union[narrowed] if len(narrowed) > 1 else narrowed[0]
    if narrowed == args:
        return annotation
    if isinstance(annotation, types.GenericAlias):  # written as list[...], dict[...]
        return origin[narrowed]
    # typing.List[...] and the like stay typing aliases: on Python 3.9 a list[...] passes
    # isinstance(..., type) but not issubclass(), which breaks code walking annotations.
    return annotation.copy_with(narrowed)


def _drop_enum_literal(members: Tuple[Any, ...], where: str) -> Tuple[Any, ...]:
    enums = [m for m in members if isinstance(m, type) and issubclass(m, Enum)]
    literals = [m for m in members if typing_extensions.get_origin(m) in _LITERALS]
    if len(enums) != 1 or len(literals) != 1:
        return members
    values = {member.value for member in enums[0]}
    listed = set(typing_extensions.get_args(literals[0]))
    if listed != values:
        raise TypeError(
            f"{where}: Literal{sorted(listed)} must list exactly the values of {enums[0].__name__}: "
            f"{sorted(values)}"
        )
    return tuple(m for m in members if m is not literals[0])
