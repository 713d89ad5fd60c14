"""What a callable accepts, read from its signature: the keyword names and their evaluated annotations, a class's
`**kwargs` followed to its bases. The config checks (`utils.config`) and the error messages (`utils.errors`) read
it."""

from __future__ import annotations

import inspect
import typing
from typing import Any


def init_owners(target) -> list:
    """The callables whose parameters `target` takes: a class's `__init__`s along its MRO, else `target` itself."""
    if not inspect.isclass(target):
        return [target]
    return [c.__init__ for c in target.__mro__ if "__init__" in vars(c)]


def accepted_parameters(target) -> list[str] | None:
    """Keyword names `target` accepts; None when it takes any (`**kwargs` that go nowhere we can see).

    A class whose `__init__` forwards `**kwargs` to its base gets the base's parameters too.
    """
    names: list[str] = []
    for owner in init_owners(target):
        params = inspect.signature(owner).parameters
        names += [n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n != "self"]
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return names
    return None


def parameter_annotations(target) -> dict[str, Any]:
    """Each parameter's annotation, evaluated (`from __future__ import annotations` leaves strings); a parameter
    forwarded by `**kwargs` gets its base class's. Annotations that do not evaluate are left out."""
    found: dict[str, Any] = {}
    for owner in init_owners(target):
        try:
            hints = typing.get_type_hints(owner)
        except Exception:  # a name only imported under TYPE_CHECKING: evaluate the annotations one by one
            hints = {}
            for name, param in inspect.signature(owner).parameters.items():
                try:
                    hints[name] = evaluated(owner, name, param.annotation)
                except Exception:
                    continue
        for name, annotation in hints.items():
            found.setdefault(name, annotation)
    return found


def evaluated(owner, name: str, annotation):
    """One annotation of `owner`, evaluated in its module (a string under `from __future__ import annotations`)."""

    def shim() -> None: ...

    shim.__annotations__ = {name: annotation}
    return typing.get_type_hints(shim, globalns=getattr(owner, "__globals__", {}))[name]
