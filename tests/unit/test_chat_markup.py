"""Replies are Markdown from a model: formatted, never able to run script or load anything."""

from html.parser import HTMLParser

import pytest

from rivya_dashboard.chat.markup import render_markdown


class Elements(HTMLParser):
    """Every element of a fragment with its attributes: what a browser would build from it."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.found.append((tag, dict(attrs)))


def test_it_formats_markdown():
    html = render_markdown(
        "# Plan\n\n**Bold** and `code`\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )

    assert "<h1>Plan</h1>" in html
    assert "<strong>Bold</strong>" in html and "<code>code</code>" in html
    assert "<li>one</li>" in html
    assert "<td>1</td>" in html


def test_code_blocks_keep_their_language_and_escape_their_text():
    html = render_markdown("```python\nif a < b and c > d: print('<b>')\n```")

    assert '<pre><code class="language-python">' in html
    assert "a &lt; b and c &gt; d" in html
    assert "<b>" not in html


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "<iframe src='https://example.test'></iframe>",
        '<a href="javascript:alert(1)">x</a>',
        "[click](javascript:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        '<div style="background:url(https://example.test/t.png)">x</div>',
        '```"><script>alert(1)</script>\ncode\n```',
    ],
)
def test_it_never_lets_script_or_raw_html_through(attack):
    elements = Elements(render_markdown(attack)).found

    assert {tag for tag, _ in elements} <= {"p", "a", "pre", "code"}
    for _, attrs in elements:
        assert not any(name.startswith("on") or name == "style" for name in attrs)
        assert attrs.get("href", "https:").startswith(("https:", "http:", "mailto:"))


def test_links_are_kept_but_open_without_referrer():
    html = render_markdown("[docs](https://rivya.ai/docs/api)")

    assert 'href="https://rivya.ai/docs/api"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_images_are_dropped_so_a_reply_cannot_track_its_readers():
    assert "<img" not in render_markdown("![pixel](https://tracker.example.test/p.png)")
