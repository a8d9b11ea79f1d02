"""``Record``: immutable value objects, cheap to define.

A frozen dataclass costs ~2 ms to create at import (it compiles generated
code), and the front-end defines ~30 of them on the cached-rebuild path. A
``Record`` subclass declares fields as annotated class attributes (the value is
the default) and gets ``__init__`` (positional or keyword, base fields first),
``__eq__``, ``__hash__``, ``__repr__`` and ``replace(**changes)``; assignment
raises.
"""

from __future__ import annotations

__all__ = ["Record"]

_MISSING = object()


class Record:
    """Base for immutable records; see the module docstring."""

    _fields: tuple[str, ...] = ()
    _defaults: tuple[tuple[str, object], ...] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        fields = list(cls._fields)
        for name in cls.__dict__.get("__annotations__", {}):
            if not name.startswith("_") and name not in fields:
                fields.append(name)
        cls._fields = tuple(fields)
        cls._defaults = tuple((name, getattr(cls, name, _MISSING)) for name in fields)

    def __init__(self, *args, **kwargs) -> None:
        if args:
            if len(args) > len(self._fields):
                raise TypeError(f"{type(self).__name__} takes at most {len(self._fields)} positional arguments")
            for name, value in zip(self._fields, args):
                if name in kwargs:
                    raise TypeError(f"{type(self).__name__} got {name!r} twice")
                kwargs[name] = value
        values = self.__dict__
        for name, default in self._defaults:
            value = kwargs.pop(name, default)
            if value is _MISSING:
                raise TypeError(f"{type(self).__name__} needs {name!r}")
            values[name] = value
        if kwargs:
            raise TypeError(f"{type(self).__name__} has no field {next(iter(kwargs))!r}")

    def _values(self) -> tuple:
        return tuple(self.__dict__[name] for name in self._fields)

    def replace(self, **changes):
        """A copy with ``changes`` applied."""
        for name in changes:
            if name not in self.__dict__:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    __delattr__ = __setattr__  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={self.__dict__[name]!r}" for name in self._fields)
        return f"{type(self).__name__}({inner})"
