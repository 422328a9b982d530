"""Gives each generated class its own copy of the shared helper methods, named after the class.

The official client defines ``to_json``, ``from_dict``... in every model class, so Python's
own messages name the class: ``PaymentTransaction.to_json() missing 1 required positional
argument: 'self'`` (its docs call ``Model.to_json()`` on the class). Ours are written once
in a base; a copy per class, made when the class is defined, keeps the code in one place
and the messages the same. The copies share the base's code object: nothing runs per call.
"""

from __future__ import annotations

import inspect
import types
from typing import Any, Iterable, Tuple


def _renamed(function: types.FunctionType, qualname: str) -> types.FunctionType:
    copy = types.FunctionType(
        function.__code__,
        function.__globals__,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__dict__.update(function.__dict__)
    copy.__doc__ = function.__doc__
    copy.__module__ = function.__module__
    copy.__annotations__ = function.__annotations__
    copy.__qualname__ = qualname
    return copy


def give_own_methods(cls: type, shared_bases: Tuple[str, ...], names: Iterable[str]) -> None:
    """Copy each of ``names`` that ``cls`` inherits from one of ``shared_bases`` onto ``cls``, renamed.

    ``shared_bases`` names the classes that only share code (``KenarModel``). A subclass of
    a class that has its own copies keeps them: a method stays named after the class that
    defines it, as Python names methods.
    """
    for name in names:
        if name in vars(cls):
            continue
        inherited: Any = inspect.getattr_static(cls, name)
        function = getattr(inherited, "__func__", inherited)
        if not isinstance(function, types.FunctionType):
            continue
        if function.__qualname__.rpartition(".")[0] not in shared_bases:
            continue
        copy = _renamed(function, f"{cls.__name__}.{name}")
        setattr(cls, name, classmethod(copy) if isinstance(inherited, classmethod) else copy)
