"""``ProtobufAny``: one typed detail of an error status, kept whole whatever its type."""

from typing import Any, ClassVar, Dict, Iterator, Optional, Tuple

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictStr,
    model_serializer,
)

from kenar_api_client.models._api_model import ApiModel, dumping_for_str


class ProtobufAny(ApiModel):
    """A ``google.protobuf.Any`` in JSON form: an ``@type`` URL plus the packed message's fields.

    The message's fields are the ``additional_properties``, a plain dict (change it in
    place, or pass ``additional_properties={...}`` when building one). ``to_dict()``,
    ``to_json()`` and the request body put them at the top level beside ``@type``, which is
    what the JSON of a ``google.protobuf.Any`` is: ``{"@type": "t", "reason": "R"}``.
    """

    # Parsing reads the URL from "@type" only: a "type" key is one of the packed message's
    # fields, as the official client's from_dict reads it. Building by keyword takes type=.
    model_config: ClassVar[ConfigDict] = ConfigDict(populate_by_name=False)  # merged with the base's
    _reject_unknown_keywords: ClassVar[bool] = False

    type: Optional[StrictStr] = Field(
        default=None, alias="@type", description="URL naming the type of the packed message."
    )

    def __init__(self, /, *, additional_properties: Optional[Dict[str, Any]] = None, **data: Any) -> None:
        # Stored as pydantic's extra fields: the wire and to_dict() then hold them flat.
        if "type" in data and "@type" not in data:  # type= is the URL; beside "@type", a packed field
            data["@type"] = data.pop("type")
        super().__init__(**{**(additional_properties or {}), **data})

    # Parsing (model_validate, a detail inside a status) stays on pydantic's path, as in KenarModel.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @property
    def additional_properties(self) -> Dict[str, Any]:
        """The packed message's fields, by wire name: this object's own dict, not a copy."""
        extra = self.__pydantic_extra__
        if extra is None:  # a model built with model_construct() and no extras
            extra = {}
            object.__setattr__(self, "__pydantic_extra__", extra)
        return extra

    @additional_properties.setter
    def additional_properties(self, value: Dict[str, Any]) -> None:
        object.__setattr__(self, "__pydantic_extra__", dict(value))

    def __repr_args__(self) -> Iterator[Tuple[Optional[str], Any]]:
        # As the official client shows it: ProtobufAny(type='t', additional_properties={...}).
        yield "type", self.type
        yield "additional_properties", self.additional_properties

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        dumped = handler(self)
        if not isinstance(dumped, dict):
            return dumped
        extra = self.additional_properties
        fields = {key: value for key, value in dumped.items() if key not in extra}
        # The packed message's values as they are, None included (exclude_none is about fields).
        packed = {key: dumped.get(key) for key in extra}
        if dumping_for_str.get():
            # to_str(): the dump shows additional_properties as the field the official model has.
            return {**fields, "additional_properties": packed}
        return {**fields, **packed}

    def __getitem__(self, key: str) -> Any:
        """Read a field by its wire name, e.g. ``detail["@type"]`` or ``detail["reason"]``."""
        if key == "@type":
            return self.type
        return self.additional_properties[key]
