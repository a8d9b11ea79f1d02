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

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        fields = list(cls._fields)
        for name in cls.__dict__.get("__annotations__", {}):
            if not name.startswith("_") and name not in fields:
                fields.append(name)
        cls._fields = tuple(fields)

    def __init__(self, *args, **kwargs) -> None:
        if len(args) > len(self._fields):
            raise TypeError(f"{type(self).__name__} takes at most {len(self._fields)} positional arguments")
        values = dict(zip(self._fields, args))
        for key, value in kwargs.items():
            if key not in self._fields:
                raise TypeError(f"{type(self).__name__} has no field {key!r}")
            if key in values:
                raise TypeError(f"{type(self).__name__} got {key!r} twice")
            values[key] = value
        for name in self._fields:
            value = values.get(name, _MISSING)
            if value is _MISSING:
                value = getattr(type(self), name, _MISSING)
                if value is _MISSING:
                    raise TypeError(f"{type(self).__name__} needs {name!r}")
            object.__setattr__(self, name, value)

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self._fields)

    def replace(self, **changes):
        """A copy with ``changes`` applied."""
        values = dict(zip(self._fields, self._values()))
        values.update(changes)
        return type(self)(**values)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    __delattr__ = __setattr__  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({inner})"
