"""A report page made fit to show inline in a notebook: scoped CSS, prefixed ids, rebuilt markup.

:func:`inline` takes a self-contained page of the report renderer and returns its body inside
``<div class="guardrail-nb">``, with

* the page's stylesheet rewritten so that every rule applies only inside that element
  (:func:`scope_css`): ``:root``, ``html`` and ``body`` become the element itself, every other
  selector is prefixed with it, and at-rules other than ``@media``/``@supports`` are dropped;
* every id (and every reference to one: ``href="#…"``, ``aria-labelledby``…) prefixed with a
  tag of the page, so that several outputs in one notebook never share an id.

An inline page is no longer behind a sandboxed frame, so its markup is not passed through: it
is parsed and written out again from what was parsed (:class:`_Rewriter`). Only the elements
and attributes of :data:`ALLOWED` (those the report templates, :mod:`.charts` and
:mod:`.curves` emit) are written, each tag rebuilt from its parsed attributes with every value
escaped again, text with ``&`` and ``<`` escaped; an address may only be an in-page anchor, a
``data:`` image or (on a link) ``http(s):``/``mailto:``; CSS (the stylesheet and ``style``
attributes) may hold no backslash, no ``<``, nothing that loads (``url(``, ``@import``,
``image-set(``…) and no function outside :data:`CSS_FUNCTIONS`. Anything else (an element of
another kind, such as the raw-text ``noembed``, ``xmp`` or ``title`` outside SVG, an unknown
attribute, a declaration, a processing instruction) raises :class:`UnsafeMarkup`. The report
renderer escapes every value, so a page fails only through a renderer bug; the caller then
shows it in a sandboxed frame instead.
"""

from __future__ import annotations

import hashlib
import html
import re
from html.parser import HTMLParser

ROOT_CLASS = "guardrail-nb"
ROOT = f".{ROOT_CLASS}"
_TEXT = frozenset({"class", "id", "title"})
"""Attributes every allowed element may carry."""
_SVG_PAINT = frozenset({"fill", "fill-opacity", "stroke", "stroke-width", "stroke-dasharray", "class"})
ALLOWED: dict[str, frozenset[str]] = {
    tag: _TEXT | extra
    for tag, extra in {
        # HTML, as the templates (templates/*.j2) write it
        "a": {"href"},
        "b": set(), "br": set(), "caption": set(), "code": set(), "dd": set(), "del": set(), "dl": set(), "dt": set(),
        "details": {"open"}, "summary": set(), "div": {"role", "aria-label"}, "em": set(), "figcaption": set(),
        "figure": set(), "footer": set(), "header": set(), "h1": set(), "h2": set(), "h3": set(), "h4": set(),
        "h5": set(), "h6": set(), "i": set(), "img": {"src", "alt"}, "ins": set(), "li": set(), "nav": {"aria-label"},
        "ol": {"aria-label"}, "ul": {"aria-label"}, "p": set(), "pre": set(), "section": {"aria-label", "aria-labelledby"},
        "small": set(), "span": {"style"}, "strong": set(), "sub": set(), "sup": set(), "table": set(), "tbody": set(),
        "thead": set(), "tfoot": set(), "tr": set(), "td": {"colspan", "rowspan", "headers", "style"},
        "th": {"colspan", "rowspan", "scope", "headers"}, "wbr": set(),
        # SVG, as charts.py and curves.py write it
        "svg": {"viewbox", "role", "aria-label", "font-family", "font-size", "width", "height"},
        "g": _SVG_PAINT | {"transform"},
        "title": set(),
        "text": {"x", "y", "fill", "font-size", "font-style", "font-weight", "text-anchor", "textlength", "lengthadjust", "transform"},
        "rect": _SVG_PAINT | {"x", "y", "width", "height"},
        "line": _SVG_PAINT | {"x1", "x2", "y1", "y2"},
        "polyline": _SVG_PAINT | {"points"},
        "circle": _SVG_PAINT | {"cx", "cy", "r"},
    }.items()
}
"""The elements an inline page may hold, each with the attributes it may carry (names as the
parser gives them, lower case). Everything else is refused: elements that run code, load or
submit something, or whose content a browser reads as raw text (``script``, ``style``,
``iframe``, ``noembed``, ``noframes``, ``noscript``, ``xmp``, ``plaintext``, ``textarea``)."""
SVG_ONLY = frozenset({"title"})
"""Allowed only inside ``<svg>``: in HTML, ``<title>`` content is raw text."""
VOID = frozenset({"br", "img", "wbr"})
ID_ATTRIBUTES = frozenset({"id", "headers", "aria-labelledby"})
"""Attributes whose value is an id, or a space-separated list of ids."""
URL_ATTRIBUTES = frozenset({"href", "src"})
FREE_TEXT = frozenset({"class", "title", "alt", "aria-label"})
"""Attributes whose value is any text (written out escaped); the others must be plain values
(:data:`_PLAIN_VALUE`): numbers, colours, keywords, point lists, SVG transforms."""
CSS_FUNCTIONS = frozenset(
    {
        "var", "calc", "min", "max", "clamp", "minmax", "repeat", "inset", "rgb", "rgba", "hsl", "hsla",
        "is", "not", "where", "has", "nth-child", "nth-last-child", "nth-of-type", "nth-last-of-type",
        "translate", "translatex", "translatey", "rotate", "scale",
    }
)
"""The only CSS functions the page may use: none of them loads anything."""
_CASED = {"viewbox": "viewBox", "textlength": "textLength", "lengthadjust": "lengthAdjust"}
"""SVG attribute names written back in their own case (the parser lowers them)."""
NOTEBOOK_CSS = f"{ROOT} {{ max-width: none; margin: 0; padding: 6px 10px 12px; }}\n"
"""After the page's own rules: the output takes the cell's width, without the page's margins."""
_LINK_SCHEMES = ("http://", "https://", "mailto:")
_UNSAFE_CSS = re.compile(
    r"\\|<|url\s*\(|@import|expression\s*\(|image-set|javascript\s*:|-moz-binding|behaviou?r\s*:|/\*", re.IGNORECASE
)
_CSS_FUNCTION = re.compile(r"([-\w]+)\(")
_PLAIN_VALUE = re.compile(r"[\w\s#%.,+()-]*")
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
    css = "\n".join(re.findall(r"<style[^>]*>(.*?)</style>", head, flags=re.DOTALL | re.IGNORECASE))
    _check_css(re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL), "the stylesheet")
    prefix = f"gr{hashlib.sha256(page.encode()).hexdigest()[:8]}-"
    scoped = scope_css(css, ROOT, prefix)
    _check_css(scoped, "the stylesheet")
    markup = _Rewriter(prefix).rewrite(body)
    return f'<div class="{ROOT_CLASS}"><style>{scoped}{NOTEBOOK_CSS}</style>{markup}</div>'


def _check_css(css: str, where: str) -> None:
    """Refuse CSS that could load anything, hide an escape, or end its ``<style>`` element."""
    unsafe = _UNSAFE_CSS.search(css)
    if unsafe:
        raise UnsafeMarkup(f"{where} holds {unsafe.group(0)!r}")
    for function in _CSS_FUNCTION.findall(css):
        if function.lower() not in CSS_FUNCTIONS:
            raise UnsafeMarkup(f"{where} uses the CSS function {function}()")


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
    """Writes the body out again from what it parsed: allowed tags rebuilt with escaped values,
    text escaped, ids prefixed; anything outside :data:`ALLOWED` raises :class:`UnsafeMarkup`."""

    def __init__(self, prefix: str) -> None:
        super().__init__(convert_charrefs=False)
        self._prefix = prefix
        self._out: list[str] = []
        self._svg = 0

    def rewrite(self, body: str) -> str:
        self.feed(body)
        self.close()
        return "".join(self._out)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._out.append(self._tag(tag, attrs, closed=False))
        self._svg += tag == "svg"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._out.append(self._tag(tag, attrs, closed=True))

    def handle_endtag(self, tag: str) -> None:
        self._allowed(tag)
        if tag == "svg":
            self._svg = max(self._svg - 1, 0)
        self._out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self._out.append(data.replace("&", "&amp;").replace("<", "&lt;"))

    def handle_entityref(self, name: str) -> None:
        self._out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self._out.append(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        """Comments are left out."""

    def handle_decl(self, decl: str) -> None:
        raise UnsafeMarkup(f"declaration <!{decl[:20]}> in the body")

    def unknown_decl(self, data: str) -> None:
        raise UnsafeMarkup(f"marked section <![{data[:20]}> in the body")

    def handle_pi(self, data: str) -> None:
        raise UnsafeMarkup(f"processing instruction <?{data[:20]}> in the body")

    def _allowed(self, tag: str) -> frozenset[str]:
        allowed = ALLOWED.get(tag)
        if allowed is None or (tag in SVG_ONLY and not self._svg):
            raise UnsafeMarkup(f"<{tag}> element")
        return allowed

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]], *, closed: bool) -> str:
        allowed = self._allowed(tag)
        shown = []
        for name, value in attrs:
            if name not in allowed:
                raise UnsafeMarkup(f"attribute {name} on <{tag}>")
            name = _CASED.get(name, name)
            if value is None:
                shown.append(f" {name}")
            else:
                shown.append(f' {name}="{html.escape(self._attribute(tag, name, value), quote=True)}"')
        end = "/" if closed and tag not in VOID else ""
        return f"<{tag}{''.join(shown)}{end}>"

    def _attribute(self, tag: str, name: str, value: str) -> str:
        if name in FREE_TEXT:
            return value
        if name in ID_ATTRIBUTES:
            return " ".join(f"{self._prefix}{token}" for token in value.split())
        if name == "style":
            _check_css(value, f"the style of <{tag}>")
            return value
        if name in URL_ATTRIBUTES:
            address = value.strip()
            if address.startswith("#") and tag == "a":
                return f"#{self._prefix}{address[1:]}"
            link = tag == "a" and address.lower().startswith(_LINK_SCHEMES)
            if not (link or (tag == "img" and address.lower().startswith("data:image/"))):
                raise UnsafeMarkup(f"{name} of <{tag}> points outside the page")
            return value
        if not _PLAIN_VALUE.fullmatch(value) or re.search(r"url\s*\(", value, re.IGNORECASE):
            raise UnsafeMarkup(f"{name} of <{tag}> is not a plain value")
        return value
