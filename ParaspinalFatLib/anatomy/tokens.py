"""How a segment name or alias is split into words (camelCase, spaces, ``_ - . / ( ) +``)."""
from __future__ import annotations

import re
from typing import Tuple

__all__ = ["camel_split", "tokenize"]

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_TOKEN = re.compile(r"[^\W_]+")


def camel_split(text: str) -> str:
    """``text`` with a space inserted at every camelCase boundary.

    Parameters
    ----------
    text : str
        A name such as ``"ErectorSpinaeL4L5"``.

    Returns
    -------
    str
        ``"Erector Spinae L4L5"``.
    """
    return _CAMEL.sub(" ", text)


def tokenize(text: str) -> Tuple[str, ...]:
    """Lower-case alphanumeric tokens of a name or alias.

    camelCase boundaries, spaces, ``_ - . / ( ) +`` all separate tokens:
    ``tokenize("Erector-Spinae (L)") == ("erector", "spinae", "l")``.

    Parameters
    ----------
    text : str
        A segment name or an alias from the name table.

    Returns
    -------
    tuple of str
        The tokens, in order.
    """
    return tuple(_TOKEN.findall(camel_split(str(text)).lower()))
