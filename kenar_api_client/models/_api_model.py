"""``ApiModel``: the base of the API's models, whose helpers behave as the official client's do.

Code written for the official client (divar-ir/kenar-sdk-python) reads what these return,
so they return the same: ``to_dict()`` in pydantic's python mode (enum members and
``datetime`` objects, as pydantic holds them) without ``None`` values or read-only fields,
``to_json()`` as ``json.dumps(self.to_dict())`` (``", "`` and ``": "`` separators, non-ASCII
as ``\\uXXXX``), ``to_str()`` as the pretty-printed dump of every field. One difference:
``to_json()`` writes a datetime in ISO 8601 where the official one raises ``TypeError``.
"""

from __future__ import annotations

import datetime
import json
import pprint
from contextvars import ContextVar
from typing import Any, ClassVar, Dict, Iterator, List, Optional, Set, Tuple, Type, Union

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from typing_extensions import Self, get_args, get_origin

from kenar_api_client.models._base import KenarModel
from kenar_api_client.models._enum import reading_answer
from kenar_api_client.models._own_methods import give_own_methods

#: True while ``to_str`` dumps a model: then ``ProtobufAny`` shows its
#: ``additional_properties`` as a field, as the official client's dump does. (A context
#: variable, not pydantic's serialization context: pydantic 2.5 has none.)
dumping_for_str: ContextVar[bool] = ContextVar("kenar_dumping_for_str", default=False)
_OWN_METHODS = ("to_dict", "to_json", "to_str", "from_dict", "from_json")


class ApiModel(KenarModel):
    """Base of the models of the Kenar API (requests and answers); see the module docstring."""

    # The read-only fields (``readOnly`` in the spec, set by the server): not in to_dict().
    _read_only_fields: ClassVar[Optional[Set[str]]] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        give_own_methods(cls, ("KenarModel", "ApiModel"), _OWN_METHODS)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        read_only = {name for name, field in cls.model_fields.items() if _is_read_only(field)}
        cls._read_only_fields = read_only or None

    def to_dict(self) -> Dict[str, Any]:
        """The model as a dict with wire names: enum members and datetimes as they are, no ``None`` values.

        Read-only fields (set by the server) are left out. Fields the server sent that this
        SDK does not know are kept (see ``additional_properties``).
        """
        return self.model_dump(by_alias=True, exclude=self._read_only_fields, exclude_none=True)

    def to_json(self) -> str:
        """``json.dumps(self.to_dict())``; a datetime is written in ISO 8601 (``isoformat()``)."""
        return json.dumps(self.to_dict(), default=_json_default)

    def to_str(self) -> str:
        """A readable, pretty-printed dump of every field, ``None`` and read-only ones included."""
        token = dumping_for_str.set(True)
        try:
            return pprint.pformat(self.model_dump(by_alias=True))
        finally:
            dumping_for_str.reset(token)

    @classmethod
    def _from_answer(cls, document: Any) -> Self:
        token = reading_answer.set(True)
        try:
            try:
                return cls.model_validate(document)
            except ValidationError as error:
                official = official_error(cls, document) or error
            # Outside the except block: this error alone is shown, not chained to the first.
            raise official
        finally:
            reading_answer.reset(token)


def _is_read_only(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get("readOnly") is True


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def official_error(cls: Type[ApiModel], document: Any) -> Optional[ValidationError]:
    """The error the official client's ``from_dict`` raises for ``document``, None if it is valid.

    That client parses each nested model with its own ``from_dict`` before the model itself,
    and reads every field with ``obj.get()``: so the first nested model (in field order,
    innermost first) that is invalid reports its own errors, titled with its own name, and
    a required field that is missing is reported as ``None`` is.
    """
    if isinstance(document, dict):
        for name, field in cls.model_fields.items():
            value = document.get(field.alias or name)
            for nested_class, nested in _nested_models(field.annotation, value):
                error = official_error(nested_class, nested)
                if error is not None:
                    return error
        document = none_for_missing_fields(cls, document)
    try:
        cls.model_validate(document)
    except ValidationError as error:
        return error
    return None


def _nested_models(annotation: Any, value: Any) -> Iterator[Tuple[Type[ApiModel], Any]]:
    """(Model class, document) of each nested model ``value`` holds for a field of ``annotation``."""
    if value is None:
        return
    if isinstance(annotation, type):
        if issubclass(annotation, ApiModel):
            yield annotation, value
        return
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, List) and isinstance(value, list) and args:
        for item in value:
            yield from _nested_models(args[0], item)
    elif origin is Union:  # Optional[X]
        for arg in args:
            yield from _nested_models(arg, value)


def none_for_missing_fields(cls: Type[ApiModel], document: Dict[str, Any]) -> Dict[str, Any]:
    """``document`` with ``None`` for each field of ``cls`` it lacks (by wire name), as obj.get() reads."""
    missing = {field.alias or name for name, field in cls.model_fields.items()} - document.keys()
    return {**document, **dict.fromkeys(missing)} if missing else document
