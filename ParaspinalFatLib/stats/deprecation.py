"""Old argument and attribute spellings of the statistics API, accepted for one more release.

The statistics functions share one argument vocabulary (README, "Statistics": ``data``,
``dv``, ``between``, ``predictors``, ``positive``, ``confidence``..., options keyword-only).
:func:`renamed_arguments` wraps a function whose arguments were renamed, made keyword-only
or reordered, so that a call in the previous spelling still works and emits one
:class:`DeprecationWarning` naming the new spelling.  :class:`DeprecatedAttribute` does the
same for a renamed attribute of a result object.  Giving a value under both the old and the
new name is a :class:`TypeError` naming both.  Only the standard library is imported.
"""
from __future__ import annotations

import functools
import inspect
import warnings
from typing import (
    Any, Callable, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple, TypeVar, Union,
)

__all__ = ["Renamed", "OldOrder", "renamed_arguments", "DeprecatedAttribute"]

_F = TypeVar("_F", bound=Callable[..., Any])

_REMOVAL = "the old spelling still works but will be removed in the next release"


class Renamed(NamedTuple):
    """How a deprecated keyword argument maps onto its new name.

    Parameters
    ----------
    new : str
        The new argument name.
    convert : callable, optional
        Turns an old value into the new one (e.g. ``alpha`` into ``confidence``).
    hint : str, optional
        Added to the warning, e.g. ``"confidence = 1 - alpha"``.
    """

    new: str
    convert: Optional[Callable[[Any], Any]] = None
    hint: str = ""


class OldOrder(NamedTuple):
    """A positional argument order of the previous release, recognised from the call.

    Parameters
    ----------
    names : tuple of str
        The (new) argument names that the positional arguments bind to, in order.
    applies : callable
        ``applies(args, kwargs) -> bool``: whether a call uses this old order.
    """

    names: Tuple[str, ...]
    applies: Callable[[tuple, Dict[str, Any]], bool]


def _positional_names(func: Callable[..., Any]) -> Tuple[str, ...]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in inspect.signature(func).parameters.values() if p.kind in kinds)


def renamed_arguments(
    renamed: Optional[Mapping[str, Union[str, Renamed]]] = None,
    *,
    options: Sequence[str] = (),
    old_orders: Sequence[OldOrder] = (),
) -> Callable[[_F], _F]:
    """Decorator: accept the previous release's argument spelling with a DeprecationWarning.

    Parameters
    ----------
    renamed : mapping, optional
        Old keyword name -> new name (a str) or a :class:`Renamed`.
    options : sequence of str
        Arguments that used to be accepted positionally after the function's current
        positional parameters and are now keyword-only, in their old order.
    old_orders : sequence of OldOrder
        Whole positional orders of the previous release that differ from the current one;
        the first whose ``applies`` is true binds the positional arguments.

    Returns
    -------
    callable
        A decorator returning a wrapper with the same name, docstring and signature.
    """
    specs: Dict[str, Renamed] = {
        old: (spec if isinstance(spec, Renamed) else Renamed(spec))
        for old, spec in (renamed or {}).items()
    }

    def decorate(func: _F) -> _F:
        name = func.__name__
        positional = _positional_names(func)
        known = set(inspect.signature(func).parameters)
        targets = [s.new for s in specs.values()] + list(options)
        targets += [n for order in old_orders for n in order.names]
        unknown = sorted(set(targets) - known)
        if unknown:  # a mistake in this package, found at import time
            raise TypeError(f"renamed_arguments({name}): {unknown} are not parameters of {name}")

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            messages = []
            order = next((o for o in old_orders if o.applies(args, kwargs)), None)
            if order is not None:
                if len(args) > len(order.names):
                    raise TypeError(f"{name}() takes at most {len(order.names)} positional "
                                    f"arguments ({len(args)} given)")
                moved = dict(zip(order.names, args))
                args = ()
                if moved:
                    messages.append(
                        f"the positional order ({', '.join(order.names)}) of the previous "
                        f"release is deprecated; pass {', '.join(k + '=' for k in moved)} "
                        "by keyword")
            else:
                if len(args) > len(positional) + len(options):
                    raise TypeError(f"{name}() takes at most {len(positional)} positional "
                                    f"arguments ({len(args)} given)")
                moved = dict(zip(options, args[len(positional):]))
                args = args[:len(positional)]
                if moved:
                    messages.append(
                        f"passing {', '.join(moved)} positionally is deprecated; pass "
                        f"{', '.join(k + '=' for k in moved)} by keyword")
            bound = set(positional[:len(args)])
            for key, value in moved.items():
                if key in kwargs or key in bound:
                    raise TypeError(f"{name}() got multiple values for argument {key!r}")
                kwargs[key] = value
            converted = []
            for old, spec in specs.items():
                if old not in kwargs:
                    continue
                if spec.new in kwargs or spec.new in bound:
                    raise TypeError(
                        f"{name}() got both {old}= (deprecated) and {spec.new}=; "
                        f"pass only {spec.new}=")
                kwargs[spec.new] = kwargs.pop(old)
                converted.append(spec)
                hint = f" ({spec.hint})" if spec.hint else ""
                messages.append(f"{old}= is deprecated, use {spec.new}={hint}")
            if messages:
                warnings.warn(f"{name}(): {'; '.join(messages)}; {_REMOVAL}",
                              DeprecationWarning, stacklevel=2)
            for spec in converted:  # after the warning: a conversion may reject the value
                if spec.convert is not None:
                    kwargs[spec.new] = spec.convert(kwargs[spec.new])
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


class DeprecatedAttribute:
    """Read-only alias of a renamed attribute of a result object; reading it warns.

    Parameters
    ----------
    new : str
        Name of the attribute that replaces it.
    convert : callable, optional
        Turns the new attribute's value into the old one (e.g. confidence into alpha).
    hint : str, optional
        Added to the warning, e.g. ``"alpha = 1 - confidence"``.
    """

    def __init__(self, new: str, convert: Optional[Callable[[Any], Any]] = None,
                 hint: str = "") -> None:
        self.new = new
        self.convert = convert
        self.hint = hint
        self.old = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.old = name

    def __get__(self, obj: Any, objtype: Optional[type] = None) -> Any:
        if obj is None:
            return self
        hint = f" ({self.hint})" if self.hint else ""
        warnings.warn(f"{type(obj).__name__}.{self.old} is deprecated, use "
                      f".{self.new}{hint}; {_REMOVAL}", DeprecationWarning, stacklevel=2)
        value = getattr(obj, self.new)
        return self.convert(value) if self.convert is not None else value
