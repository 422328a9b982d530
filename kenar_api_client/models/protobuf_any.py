"""``ProtobufAny``: one typed detail of an error status, kept whole whatever its type."""

from typing import Any, ClassVar, Optional

from pydantic import Field, StrictStr

from kenar_api_client.models._base import KenarModel


class ProtobufAny(KenarModel):
    """A ``google.protobuf.Any`` in JSON form: an ``@type`` URL plus the message's own fields.

    The other fields are free-form by definition, so keyword construction accepts them too;
    read them with ``additional_properties`` or as attributes.
    """

    _reject_unknown_keywords: ClassVar[bool] = False

    type: Optional[StrictStr] = Field(
        default=None, alias="@type", description="URL naming the type of the packed message."
    )

    def __getitem__(self, key: str) -> Any:
        """Read a field by its wire name, e.g. ``detail["@type"]`` or ``detail["reason"]``."""
        if key == "@type":
            return self.type
        return self.additional_properties[key]
