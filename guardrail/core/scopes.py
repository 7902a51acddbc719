"""Scope names: how a metric says which slice of the data it describes (stdlib only).

A scope is built from parts joined by syntax characters: ``+`` joins the features of an
intersection (``sex+race``), ``/`` adds a qualifier (``sex/class=>50K``,
``hospital=Cleveland/sex``), and rule references and policy checks add ``[``, ``]``, ``*`` and
``?``. Every part that comes from a user or a dataset (a column name, a class label, a hospital
name) is percent-encoded for exactly those characters (:func:`scope_part`), so that a column
named ``group+sex`` has the scope ``group%2Bsex`` and never collides with the intersection of
``group`` and ``sex``, and a hospital named ``a/b`` cannot pass for hospital ``a``'s metrics
by attribute ``b``. Names without those characters read as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote

SCOPE_SEPARATOR = "+"
SCOPE_ESCAPED = "%+/=[]*?"
"""Characters percent-encoded inside one part of a scope: the separator, the qualifiers'
``/`` and ``=``, a rule reference's brackets, the glob characters a policy check matches
scopes with, and ``%`` itself."""
HOSPITAL = "hospital="
"""Prefix of a federated hospital's scopes."""


def scope_part(text: str) -> str:
    """One feature name, class label or hospital name as written inside a scope: the
    characters of :data:`SCOPE_ESCAPED` percent-encoded, everything else kept.

    >>> scope_part("sex"), scope_part("group+sex"), scope_part("a/b=c[1]"), scope_part("50%")
    ('sex', 'group%2Bsex', 'a%2Fb%3Dc%5B1%5D', '50%25')
    """
    return "".join(f"%{ord(c):02X}" if c in SCOPE_ESCAPED else c for c in text)


def scope_name(features: Sequence[str]) -> str:
    """The scope of a grouping: its features, each escaped by :func:`scope_part`, joined by ``+``.

    >>> scope_name(("sex", "race")), scope_name(("group+sex",)), scope_name(("group", "sex"))
    ('sex+race', 'group%2Bsex', 'group+sex')
    """
    return SCOPE_SEPARATOR.join(scope_part(str(f)) for f in features)


def scope_features(scope: str) -> tuple[str, ...]:
    """The features of a scope made by :func:`scope_name` (its inverse).

    >>> scope_features("group%2Bsex"), scope_features("group+sex")
    (('group+sex',), ('group', 'sex'))
    """
    return tuple(unquote(part) for part in scope.split(SCOPE_SEPARATOR))


def hospital_scope(name: str, attribute: str | None = None) -> str:
    """The scope of a federated hospital's metrics (``hospital=<name>``), or of its fairness
    metrics by one attribute (``hospital=<name>/<attribute>``), each part escaped.

    >>> hospital_scope("VA Long Beach"), hospital_scope("a/b", "sex"), hospital_scope("x=1%")
    ('hospital=VA Long Beach', 'hospital=a%2Fb/sex', 'hospital=x%3D1%25')
    """
    scope = HOSPITAL + scope_part(str(name))
    return scope if attribute is None else f"{scope}/{scope_part(attribute)}"


def hospital_of(scope: str) -> str | None:
    """The hospital named by a scope made by :func:`hospital_scope` (its inverse); ``None`` for
    any other scope.

    >>> hospital_of("hospital=a%2Fb/sex"), hospital_of("hospital=Hungary"), hospital_of("federation/sex")
    ('a/b', 'Hungary', None)
    """
    if not scope.startswith(HOSPITAL):
        return None
    return unquote(scope[len(HOSPITAL) :].partition("/")[0])
