"""The base layout: role-aware navigation, error pages, CSP-safe markup, labelled forms, i18n."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

from rivya_dashboard.accounts.models import Invite, Role
from rivya_dashboard.accounts.navigation import SECTIONS

TEMPLATES = Path(settings.BASE_DIR) / "templates"
CSS = Path(settings.BASE_DIR) / "static" / "css" / "console.css"


def nav_links(html: str) -> list[str]:
    """The sections listed in the menu (the member's own security link sits below them)."""
    nav = re.search(r'<nav id="primary-nav".*?<ul>.*?</ul>', html, re.S)
    return re.findall(r'href="([^"]+)"', nav.group(0)) if nav else []


def routed_sections_for(role: str) -> list[str]:
    urls = []
    for name, _label, minimum in SECTIONS:
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        if Role(minimum) in ROLE_ORDER[: ROLE_ORDER.index(role) + 1]:
            urls.append(url)
    return urls


ROLE_ORDER = [Role.VIEWER, Role.OPERATOR, Role.ADMIN, Role.OWNER]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLE_ORDER)
def test_navigation_shows_only_sections_the_role_can_open(clients, role):
    client = clients[role]
    links = nav_links(client.get("/").content.decode())
    assert links == routed_sections_for(role)
    for url in links:
        assert client.get(url).status_code == 200, url
    assert ("/accounts/team/" in links) == (role == Role.OWNER)
    assert ("/accounts/audit/" in links) == (role in (Role.OWNER, Role.ADMIN))


@pytest.mark.django_db
def test_the_current_section_is_marked(clients):
    html = clients[Role.OWNER].get("/accounts/team/").content.decode()
    assert '<a href="/accounts/team/" aria-current="page">' in html


@pytest.mark.django_db
def test_a_visitor_sees_no_navigation(members):
    html = Client().get("/accounts/login/").content.decode()
    assert 'id="primary-nav"' not in html
    assert "Sign out" not in html


@pytest.mark.django_db
def test_unknown_urls_get_the_styled_404(clients):
    for who in ("outsider", Role.VIEWER):
        response = clients[who].get("/no/such/page/")
        assert response.status_code == 404
        html = response.content.decode()
        assert "Page not found" in html
        assert "css/console.css" in html


@pytest.mark.django_db
def test_a_forbidden_page_is_the_styled_403_with_navigation(clients):
    response = clients[Role.VIEWER].get("/accounts/team/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "You don't have access to this" in html.replace("&#x27;", "'")
    assert 'id="primary-nav"' in html


@pytest.fixture
def pages(clients, members) -> dict[str, object]:
    """Each account page as its role sees it; the invitation makes the accept page exist."""
    owner = clients[Role.OWNER]
    created = owner.post(
        "/accounts/team/invites/", {"email": "n@example.test", "role": "viewer", "days": 1}
    )
    link = re.search(r'value="(http://testserver[^"]+)"', created.content.decode()).group(1)
    return {
        "login": clients["outsider"].get("/accounts/login/"),
        "home": owner.get("/"),
        "team": owner.get("/accounts/team/"),
        "invite-created": created,
        "invite-accept": Client().get(link.removeprefix("http://testserver")),
        "audit": owner.get("/accounts/audit/"),
        "403": clients[Role.VIEWER].get("/accounts/audit/"),
        "404": owner.get("/missing/"),
        "invite-unusable": revoked_invite_page(owner, link),
    }


def revoked_invite_page(owner: Client, link: str):
    owner.post(f"/accounts/team/invites/{Invite.objects.get().pk}/revoke/")
    return Client().get(link.removeprefix("http://testserver"))


@pytest.mark.django_db
def test_pages_run_no_script_without_the_nonce_and_use_no_inline_styles(pages):
    for name, response in pages.items():
        policy = response["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
        html = response.content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or f'nonce="{nonce}"' in tag, (name, tag)
        assert not re.search(r"\sstyle=", html), name
        assert not re.search(r"\son[a-z]+=", html), name


@pytest.mark.django_db
def test_every_form_control_has_a_label(pages):
    for name, response in pages.items():
        html = response.content.decode()
        labelled = set(re.findall(r'<label[^>]*\sfor="([^"]+)"', html))
        for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
            if re.search(r'type="(hidden|submit)"', tag):
                continue
            control_id = re.search(r'\sid="([^"]+)"', tag)
            named = control_id and control_id.group(1) in labelled
            assert named or "aria-label=" in tag, (name, tag)


@pytest.mark.django_db
def test_every_htmx_request_has_a_plain_fallback(pages):
    for name, response in pages.items():
        for tag in re.findall(r"<[a-z]+\b[^>]*\shx-get=[^>]*>", response.content.decode()):
            assert re.search(r"\s(href|action)=", tag), (name, tag)


@pytest.mark.django_db
def test_htmx_requests_carry_the_csrf_token(pages):
    html = pages["home"].content.decode()
    assert re.search(r'<body hx-headers=\'\{"X-CSRFToken": "[A-Za-z0-9]{20,}"\}\'>', html)


@pytest.mark.django_db
def test_the_mobile_menu_toggle_controls_the_navigation(pages):
    html = pages["home"].content.decode()
    assert re.search(r'<button class="nav-toggle[^>]*aria-controls="primary-nav"', html)
    assert 'aria-expanded="false"' in html


def test_the_stylesheet_uses_logical_properties_only():
    css = CSS.read_text()
    physical = re.findall(
        r"(?:margin|padding|border)-(?:left|right|top|bottom)\b"
        r"|(?<![-\w])(?:left|right|top|bottom)\s*:"
        r"|text-align:\s*(?:left|right)|float:\s*(?:left|right)"
        r"|(?<![-\w])(?:width|height)\s*:",
        css,
    )
    assert not physical, physical
    assert ":focus-visible" in css


USER_READ_ATTRIBUTES = (
    r'\b(?:alt|title|placeholder|aria-label|data-confirm|data-copied|data-label)="([^"]*)"'
)


# Symbols that read the same in every language; code and key names are skipped as elements.
NOT_PROSE = {"UTC", "ms", "CSV", "JSON", "API", "URL", "ID", "cURL", "SSE", "HTTP", "HTTPS"}


def untranslated(source: str) -> list[str]:
    """Words a reader would see that are not inside a translation tag."""
    text = re.sub(r"{%\s*blocktranslate.*?{%\s*endblocktranslate\s*%}", " ", source, flags=re.S)
    text = re.sub(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}|{#.*?#}", " ", text, flags=re.S)
    text = re.sub(r"<(script|style|code|kbd)\b.*?</\1>", " ", text, flags=re.S)
    text = re.sub(r"{%\s*block page_class\s*%}.*?{%\s*endblock\s*%}", " ", text)
    found = [
        value
        for value in re.findall(USER_READ_ATTRIBUTES, text)
        if re.search(r"[A-Za-z]", re.sub(r"{[{%].*?[}%]}", "", value))
    ]
    text = re.sub(r"{%.*?%}|{{.*?}}", " ", text, flags=re.S)
    text = re.sub(r"<[^>]*>", " ", text, flags=re.S)
    text = re.sub(r"&#?\w+;", " ", text)
    words = [word for word in re.findall(r"[A-Za-z]{2,}", text) if word not in NOT_PROSE]
    return found + words


@pytest.mark.parametrize(
    "template", sorted(str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html"))
)
def test_templates_mark_every_visible_string_for_translation(template):
    assert untranslated((TEMPLATES / template).read_text()) == []


def test_the_translation_check_catches_bare_text():
    assert untranslated('<p>Hello {% translate "World" %}</p>') == ["Hello"]
    assert untranslated('<button title="Theme">{% translate "x" %}</button>') == ["Theme"]
    assert untranslated("<p title=\"{% translate 'ok' %}\">{{ name }}</p>") == []


@pytest.mark.django_db
def test_a_partial_reads_neither_the_navigation_nor_the_banners(clients, members):
    """The bar and the banners are worked out only where a page shows them; a partial swapped
    into a page (or a chat reply's end) must not pay for them."""
    admin = clients[Role.OWNER]
    banner_tables = ("webhooks_failurealert", "console_balancealert")

    with CaptureQueriesContext(connection) as page:
        admin.get(reverse("chat"))
    with CaptureQueriesContext(connection) as partial:
        admin.get(reverse("chat"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="composer")

    page_sql = " ".join(query["sql"] for query in page.captured_queries)
    partial_sql = " ".join(query["sql"] for query in partial.captured_queries)
    assert all(table in page_sql for table in banner_tables)
    assert not any(table in partial_sql for table in banner_tables)
