"""A report page made fit to show inline in a notebook: scoped CSS, prefixed ids, checked markup.

:func:`inline` takes a self-contained page of the report renderer and returns its body inside
``<div class="guardrail-nb">``, with

* the page's stylesheet rewritten so that every rule applies only inside that element
  (:func:`scope_css`): ``:root``, ``html`` and ``body`` become the element itself, every other
  selector is prefixed with it, and at-rules other than ``@media``/``@supports`` are dropped;
* every id (and every reference to one: ``href="#…"``, ``aria-labelledby``, ``url(#…)``)
  prefixed with a tag of the page, so that several outputs in one notebook never share an id.

An inline page is no longer behind a sandboxed frame, so the markup is checked first
(:class:`UnsafeMarkup`): no element of :data:`REFUSED_TAGS`, no event-handler attribute, no
address other than an in-page anchor, a ``data:`` image or (on a link) ``http(s):``/``mailto:``,
and no CSS that loads anything. The report renderer escapes every value, so a page fails only
through a renderer bug; the caller then shows it in a sandboxed frame instead.
"""

from __future__ import annotations

import hashlib
import html
import re
from html.parser import HTMLParser

ROOT_CLASS = "guardrail-nb"
ROOT = f".{ROOT_CLASS}"
REFUSED_TAGS = frozenset(
    {
        "script", "iframe", "frame", "frameset", "object", "embed", "applet", "link", "meta", "base", "form", "input",
        "button", "textarea", "select", "style", "template", "noscript", "portal", "set", "animate", "animatemotion",
        "animatetransform", "handler", "listener", "foreignobject",
    }
)
"""Elements an inline page may not hold: they run code, load or submit something, or change
other elements (SVG animation), or carry markup the check cannot see (``template``)."""
ID_ATTRIBUTES = frozenset({"id", "for", "headers", "aria-labelledby", "aria-describedby", "aria-controls", "aria-owns"})
"""Attributes whose value is an id, or a space-separated list of ids."""
URL_ATTRIBUTES = frozenset(
    {"href", "xlink:href", "src", "srcset", "action", "formaction", "poster", "background", "data", "ping", "lowsrc", "dynsrc", "cite"}
)
NOTEBOOK_CSS = f"{ROOT} {{ max-width: none; margin: 0; padding: 6px 10px 12px; }}\n"
"""After the page's own rules: the output takes the cell's width, without the page's margins."""
_LINK_SCHEMES = ("http://", "https://", "mailto:")
_UNSAFE_CSS = re.compile(r"url\(\s*['\"]?(?!#|data:image/)|@import|expression\s*\(|javascript:|-moz-binding|behavior\s*:", re.IGNORECASE)
_ROOT_SELECTOR = re.compile(r"^(?::root|html|body)(?![\w-])(?:\s+(?::root|html|body)(?![\w-]))*")
_ID_SELECTOR = re.compile(r"#(-?[A-Za-z_][\w-]*)")
_KEPT_AT_RULES = ("@media", "@supports", "@container", "@layer")


class UnsafeMarkup(ValueError):
    """The page holds something that may not be shown outside a sandboxed frame."""


def inline(page: str) -> str:
    """The body of ``page`` (a whole HTML document) as one scoped element (see the module docstring).

    Raises
    ------
    UnsafeMarkup
        When the page is not a document with a body, or fails the check.
    """
    head, found, rest = page.partition("<body")
    if not found or "</body>" not in rest:
        raise UnsafeMarkup("not an HTML document with a body")
    body = rest[rest.index(">") + 1 : rest.rindex("</body>")]
    css = "\n".join(re.findall(r"<style[^>]*>(.*?)</style>", head, flags=re.DOTALL))
    if _UNSAFE_CSS.search(css):
        raise UnsafeMarkup("the stylesheet loads something")
    prefix = f"gr{hashlib.sha256(page.encode()).hexdigest()[:8]}-"
    markup = _Rewriter(prefix).rewrite(body)
    return f'<div class="{ROOT_CLASS}"><style>{scope_css(css, ROOT, prefix)}{NOTEBOOK_CSS}</style>{markup}</div>'


def scope_css(css: str, root: str = ROOT, id_prefix: str = "") -> str:
    """Every rule of ``css`` made to apply only inside ``root`` (see the module docstring).

    >>> scope_css(":root { --x: 1 } body { margin: 0 } td.num, th { color: red } @page { margin: 1cm }")
    '.guardrail-nb { --x: 1 }\\n.guardrail-nb { margin: 0 }\\n.guardrail-nb td.num, .guardrail-nb th { color: red }\\n'
    >>> scope_css("@media print { body > nav, #top { display: none } }", id_prefix="p-")
    '@media print {\\n.guardrail-nb > nav, .guardrail-nb #p-top { display: none }\\n}\\n'
    """
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    out: list[str] = []
    at = 0
    while True:
        brace = css.find("{", at)
        if brace == -1:
            break
        statement = css.find(";", at)
        if statement != -1 and statement < brace:  # @import, @charset…: dropped
            at = statement + 1
            continue
        prelude, end = css[at:brace].strip(), _block_end(css, brace)
        block = css[brace + 1 : end]
        if prelude.startswith(_KEPT_AT_RULES):
            out.append(f"{prelude} {{\n{scope_css(block, root, id_prefix)}}}\n")
        elif not prelude.startswith("@"):  # @page, @font-face, @keyframes: not for an inline element
            out.append(f"{', '.join(_scoped(s, root, id_prefix) for s in _split_selectors(prelude))} {{{block}}}\n")
        at = end + 1
    return "".join(out)


def _scoped(selector: str, root: str, id_prefix: str) -> str:
    selector = _ID_SELECTOR.sub(lambda m: f"#{id_prefix}{m.group(1)}", selector.strip())
    own = _ROOT_SELECTOR.match(selector)
    if own:
        rest = selector[own.end() :]
        return f"{root} {rest.strip()}" if rest[:1].isspace() else f"{root}{rest}"
    return f"{root} {selector}"


def _split_selectors(prelude: str) -> list[str]:
    """A selector list split at its top-level commas (not those inside ``:is(…)``)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(prelude):
        depth += char in "([" 
        depth -= char in ")]"
        if char == "," and depth == 0:
            parts.append(prelude[start:i])
            start = i + 1
    parts.append(prelude[start:])
    return [p for p in parts if p.strip()]


def _block_end(css: str, brace: int) -> int:
    """The index of the ``}`` closing the block opened at ``brace`` (strings skipped)."""
    depth, quote, i = 0, "", brace
    while i < len(css):
        char = css[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(css)


class _Rewriter(HTMLParser):
    """Checks the body's markup and prefixes its ids; text and entities pass through as written."""

    def __init__(self, prefix: str) -> None:
        super().__init__(convert_charrefs=False)
        self._prefix = prefix
        self._out: list[str] = []

    def rewrite(self, body: str) -> str:
        self.feed(body)
        self.close()
        return "".join(self._out)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._out.append(self._tag(tag, attrs, closed=False))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._out.append(self._tag(tag, attrs, closed=True))

    def handle_endtag(self, tag: str) -> None:
        self._out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self._out.append(data)

    def handle_entityref(self, name: str) -> None:
        self._out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self._out.append(f"&#{name};")

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]], *, closed: bool) -> str:
        if tag in REFUSED_TAGS:
            raise UnsafeMarkup(f"<{tag}> element")
        raw = self.get_starttag_text() or ""
        changed = False
        kept: list[tuple[str, str | None]] = []
        for name, value in attrs:
            new = self._attribute(tag, name, value)
            changed |= new != value
            kept.append((name, new))
        if not changed:
            return raw
        shown = "".join(f" {name}" if value is None else f' {name}="{html.escape(value, quote=True)}"' for name, value in kept)
        return f"<{tag}{shown}{' /' if closed else ''}>"

    def _attribute(self, tag: str, name: str, value: str | None) -> str | None:
        if name.startswith("on"):
            raise UnsafeMarkup(f"event handler {name} on <{tag}>")
        if value is None:
            return None
        if name == "style" and _UNSAFE_CSS.search(value):
            raise UnsafeMarkup(f"style of <{tag}> loads something")
        if name in URL_ATTRIBUTES:
            address = value.strip()
            if address.startswith("#"):
                return f"#{self._prefix}{address[1:]}"
            link = tag == "a" and name == "href" and address.lower().startswith(_LINK_SCHEMES)
            if not (link or address.lower().startswith("data:image/")):
                raise UnsafeMarkup(f"{name} of <{tag}> points outside the page")
            return value
        if name in ID_ATTRIBUTES:
            return " ".join(f"{self._prefix}{token}" for token in value.split())
        return value.replace("url(#", f"url(#{self._prefix}") if "url(#" in value else value
