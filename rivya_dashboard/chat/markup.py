"""Model replies as HTML: Markdown without raw HTML, then an allow-list sanitizer as a second wall.

Copy buttons on code blocks are added by static/js/chat.js, so no interactive element ever has
to pass the sanitizer.
"""

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_markdown.enable(["table", "strikethrough"])

# No images: a reply could otherwise make every reader's browser fetch a tracking URL.
ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s",
    "code", "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr",
    "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}


def _only_language_classes(tag: str, attribute: str, value: str) -> str | None:
    if tag == "code" and attribute == "class":
        kept = [name for name in value.split() if name.startswith("language-")]
        return " ".join(kept) or None
    return value


def render_markdown(text: str) -> SafeString:
    html = _markdown.render(text)
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        attribute_filter=_only_language_classes,
    )
    return mark_safe(clean)  # noqa: S308 - sanitized by nh3 just above
