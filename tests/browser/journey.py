"""A person's walk through the console: every page visited is checked the same way.

`Walk.visit` opens a page and asserts what any page owes its visitor: an answer below 400, the
page's heading in the walker's language, the language and direction on <html>, no script error
or Content-Security-Policy report in the browser console, and no serious or critical axe-core
finding. Texts are looked up through the console's own catalogue (`said`), so the same walk runs
in English and in Urdu and also proves the page was translated.
"""

import re
from dataclasses import dataclass, field

from axe_playwright_python.sync_playwright import Axe
from django.utils import translation
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import DESKTOP, PHONE

AXE = Axe()
BLOCKING_IMPACTS = {"serious", "critical"}
STILL = "() => document.getAnimations().every(a => a.playState !== 'running')"


@dataclass(frozen=True)
class Variant:
    """How a person looks at the console: language, screen and colour scheme."""

    language: str
    viewport: dict
    scheme: str

    @property
    def name(self) -> str:
        width = "desktop" if self.viewport == DESKTOP else "phone"
        return f"{self.language}-{width}-{self.scheme}"

    @property
    def phone(self) -> bool:
        return self.viewport == PHONE


VARIANTS = {
    variant.name: variant
    for variant in (
        Variant("en", DESKTOP, "light"),
        Variant("ur", PHONE, "dark"),
        Variant("en", PHONE, "dark"),
        Variant("ur", DESKTOP, "light"),
    )
}


def said(language: str, text: str) -> str:
    """text as the console says it in language."""
    with translation.override(language):
        return translation.gettext(text)


def dress(context: BrowserContext, variant: Variant, base_url: str) -> None:
    """Language cookie and saved theme before the first page, as a returning person has them."""
    context.add_cookies([{"name": "django_language", "value": variant.language, "url": base_url}])
    context.add_init_script(
        f"try {{ localStorage.setItem('rivya-theme', '{variant.scheme}'); }} catch (e) {{}}"
    )


@dataclass
class Walk:
    page: Page
    variant: Variant
    visited: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.set_viewport_size(self.variant.viewport)
        self.page.emulate_media(color_scheme=self.variant.scheme)
        self.page.on("console", self._listen)

    def _listen(self, message) -> None:
        if message.type == "error":
            self.console_errors.append(f"{self.page.url}: {message.text}")

    def say(self, text: str) -> str:
        return said(self.variant.language, text)

    def visit(self, path: str, heading: str | None = None) -> Page:
        response = self.page.goto(path)
        assert response is not None and response.status < 400, (path, response and response.status)
        self.check(heading)
        return self.page

    def check(self, heading: str | None = None) -> None:
        """The current page, as every page must be."""
        page = self.page
        self.visited.append(page.url)
        html = page.locator("html")
        expect(html).to_have_attribute("lang", self.variant.language)
        expect(html).to_have_attribute("dir", "rtl" if self.variant.language == "ur" else "ltr")
        expect(html).to_have_attribute("data-theme", self.variant.scheme)
        if heading is not None:
            expect(page.locator("h1").first).to_contain_text(self.say(heading))
        self.assert_accessible()
        assert self.console_errors == [], self.console_errors

    def assert_accessible(self) -> None:
        # axe judges a still page: an entrance animation half-way through is not the contrast
        # anyone reads.
        for _ in range(40):
            if self.page.evaluate(STILL):
                break
            self.page.wait_for_timeout(50)
        results = AXE.run(self.page)
        blocking = [
            f"{violation['id']} ({violation['impact']}): "
            + "; ".join(node["target"][0] for node in violation["nodes"][:3])
            for violation in results.response["violations"]
            if violation["impact"] in BLOCKING_IMPACTS
        ]
        assert blocking == [], f"{self.page.url} {self.variant.name}: {blocking}"

    def nav(self) -> None:
        """On a phone the menu is folded away: open it before using the navigation."""
        if self.variant.phone:
            toggle = self.page.locator("[data-nav-toggle], .nav-toggle").first
            if toggle.is_visible():
                toggle.click()

    def screenshot(self, directory, name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(
            path=directory / f"journey-{name}-{self.variant.name}.png", full_page=True
        )


def number_in(text: str) -> int:
    """The first whole number in text, in Latin or Urdu (Extended Arabic-Indic) digits."""
    digits = text.translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789"))
    found = re.search(r"\d[\d,]*", digits)
    assert found, text
    return int(found.group(0).replace(",", ""))
