"""The Urdu catalogue is complete, current and compiled, checked without gettext tools.

English is the source language: every msgid is the English text, so English needs no catalogue
(it would be msgid == msgstr throughout). Urdu must translate every message the sources mark,
and nothing else: a message missing from the catalogue, left empty or fuzzy, or a catalogue entry
no source uses any more, fails here. The refresh procedure is in the README ("Translations").

The messages are collected the way `makemessages` collects them, but in Python: Django's
`templatize` turns each template into the pseudo-Python that makemessages hands to xgettext, and
the gettext calls in it and in the .py files are read with `tokenize` and `ast`.
"""

import ast
import gettext
import io
import re
import tokenize
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.utils import translation
from django.utils.translation.template import templatize

BASE = Path(settings.BASE_DIR)
SOURCE_DIRS = [BASE / "rivya_dashboard", BASE / "templates"]
CATALOGUE = BASE / "locale" / "ur" / "LC_MESSAGES" / "django.po"
COMPILED = CATALOGUE.with_suffix(".mo")

# The keywords makemessages gives xgettext for Python, with their argument positions:
# (context, singular, plural), None where the call has no such argument.
KEYWORDS = {
    "_": (None, 0, None),
    "gettext": (None, 0, None),
    "gettext_lazy": (None, 0, None),
    "gettext_noop": (None, 0, None),
    "ngettext": (None, 0, 1),
    "ngettext_lazy": (None, 0, 1),
    "pgettext": (0, 1, None),
    "pgettext_lazy": (0, 1, None),
    "npgettext": (0, 1, 2),
    "npgettext_lazy": (0, 1, 2),
}

Message = tuple[str, str, str]  # (context, msgid, msgid_plural), "" where absent


def message_from(name: str, args: list[str | None]) -> Message | None:
    context_at, singular_at, plural_at = KEYWORDS[name]
    wanted = [at for at in (context_at, singular_at, plural_at) if at is not None]
    if len(args) <= max(wanted) or any(args[at] is None for at in wanted):
        return None
    return (
        args[context_at] if context_at is not None else "",
        args[singular_at],
        args[plural_at] if plural_at is not None else "",
    )


def calls_in_f_strings(tree: ast.AST) -> set[ast.AST]:
    """xgettext reads an f-string as one string literal and never sees the calls inside it."""
    return {
        inner
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for inner in ast.walk(node)
        if isinstance(inner, ast.Call)
    }


def python_messages(source: str) -> set[Message]:
    found = set()
    tree = ast.parse(source)
    hidden = calls_in_f_strings(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or node in hidden:
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name not in KEYWORDS:
            continue
        args = [
            arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
            for arg in node.args
        ]
        message = message_from(name, args)
        if message:
            found.add(message)
    return found


def template_messages(source: str, origin: str) -> set[Message]:
    """Reads the gettext calls in templatize's output; the rest of it is blanked-out text."""
    pseudo = "\n".join(line.strip() for line in templatize(source, origin).splitlines())
    tokens = [
        token
        for token in tokenize.generate_tokens(io.StringIO(pseudo).readline)
        if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)
    ]
    found = set()
    for at, token in enumerate(tokens[:-1]):
        if token.string not in KEYWORDS or tokens[at + 1].string != "(":
            continue
        args: list[str | None] = []
        current: list[str] = []
        for inner in tokens[at + 2 :]:
            if inner.string in (",", ")"):
                args.append("".join(current) if current else None)
                current = []
                if inner.string == ")":
                    break
            elif inner.type == tokenize.STRING:
                current.append(ast.literal_eval(inner.string))
            else:
                current = ["\0"]  # not a literal: xgettext skips the call
        message = message_from(token.string, [a if a != "\0" else None for a in args])
        if message:
            found.add(message)
    return found


def source_messages() -> dict[Message, str]:
    """Every marked message, with one file that uses it."""
    found: dict[Message, str] = {}
    for directory in SOURCE_DIRS:
        for path in sorted(directory.rglob("*")):
            if path.suffix == ".py":
                messages = python_messages(path.read_text())
            elif path.suffix in (".html", ".txt"):
                messages = template_messages(path.read_text(), str(path))
            else:
                continue
            for message in messages:
                found.setdefault(message, str(path.relative_to(BASE)))
    return found


def catalogue_entries() -> list[polib.POEntry]:
    return [entry for entry in polib.pofile(str(CATALOGUE)) if not entry.obsolete]


def key(entry: polib.POEntry) -> Message:
    return (entry.msgctxt or "", entry.msgid, entry.msgid_plural or "")


PLACEHOLDER = re.compile(r"%(?:\([a-z_0-9]+\))?[sdfr]|\{[a-z_0-9]*\}")


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text.replace("%%", "")))


def test_the_extractor_finds_what_makemessages_finds():
    template = (
        '{% load i18n %}{% translate "Plain" %}<p title="{% translate \'Quoted\' %}">'
        "{% blocktranslate with n=x count counter=items|length %}{{ n }} item{% plural %}"
        "{{ n }} items{% endblocktranslate %}{% translate 'Verb' context 'menu' %}"
        '{{ value|default:_("None yet") }}{% blocktranslate trimmed %}\n  Two\n  lines 50%\n'
        "{% endblocktranslate %}"
    )
    assert template_messages(template, "t.html") == {
        ("", "Plain", ""),
        ("", "Quoted", ""),
        ("", "%(n)s item", "%(n)s items"),
        ("menu", "Verb", ""),
        ("", "None yet", ""),
        ("", "Two lines 50%%", ""),
    }
    python = (
        "from django.utils import translation as t\n"
        '_("a" "b"); t.gettext_lazy("c"); ngettext_lazy("%(n)d x", "%(n)d xs", "n")\n'
        'pgettext("ctx", "d"); gettext(name); f"{_(\'hidden\')}"'
    )
    assert python_messages(python) == {
        ("", "ab", ""),
        ("", "c", ""),
        ("", "%(n)d x", "%(n)d xs"),
        ("ctx", "d", ""),
    }


def test_no_message_hides_in_an_f_string():
    hidden = []
    for path in sorted((BASE / "rivya_dashboard").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for call in calls_in_f_strings(tree):
            name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
            if name in KEYWORDS:
                hidden.append(f"{path.relative_to(BASE)}:{call.lineno}")
    assert not hidden, f"makemessages cannot see these, so they stay English: {hidden}"


def test_every_marked_message_is_in_the_urdu_catalogue():
    in_catalogue = {key(entry) for entry in catalogue_entries()}
    missing = {m: where for m, where in source_messages().items() if m not in in_catalogue}
    assert not missing, (
        f"{len(missing)} messages are not in {CATALOGUE.relative_to(BASE)}; run the README's "
        f"makemessages line and translate them: {sorted(missing.items())[:20]}"
    )


def test_the_catalogue_holds_nothing_the_sources_dropped():
    used = source_messages()
    stale = [key(entry) for entry in catalogue_entries() if key(entry) not in used]
    assert not stale, f"Catalogue entries no source uses (run makemessages): {stale[:20]}"


def test_every_urdu_entry_is_translated():
    untranslated = [
        entry.msgid
        for entry in catalogue_entries()
        if "fuzzy" in entry.flags
        or (entry.msgid_plural and not all(entry.msgstr_plural.values()))
        or (not entry.msgid_plural and not entry.msgstr)
    ]
    assert not untranslated, f"Untranslated or fuzzy: {untranslated[:20]}"


def test_every_translation_keeps_the_placeholders():
    """A lost or renamed %(name)s breaks the page at render time, not just its wording."""
    broken = []
    for entry in catalogue_entries():
        if entry.msgid_plural:
            for index, text in entry.msgstr_plural.items():
                source = entry.msgid if int(index) == 0 else entry.msgid_plural
                if placeholders(text) != placeholders(source):
                    broken.append(entry.msgid)
        elif placeholders(entry.msgstr) != placeholders(entry.msgid):
            broken.append(entry.msgid)
    assert not broken, f"Placeholders differ from the English: {broken[:20]}"


def test_the_compiled_catalogue_matches_its_source():
    with COMPILED.open("rb") as compiled:
        loaded = gettext.GNUTranslations(compiled)._catalog
    expected: dict[object, str] = {}
    for entry in catalogue_entries():
        msgid = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        if entry.msgid_plural:
            for index, text in entry.msgstr_plural.items():
                expected[(msgid, int(index))] = text
        else:
            expected[msgid] = entry.msgstr
    compiled_messages = {k: v for k, v in loaded.items() if k != ""}
    assert compiled_messages == expected, "Run the README's compilemessages line."


@pytest.mark.parametrize(
    ("english", "urdu"),
    [("Sign out", "سائن آؤٹ"), ("Sign in", "سائن ان"), ("Owner", "مالک")],
)
def test_urdu_pages_read_the_console_catalogue(english, urdu):
    with translation.override("ur"):
        assert translation.gettext(english) == urdu


def test_the_console_catalogue_overrides_djangos_urdu():
    """Django's own Urdu spells "is" with a do-chashmi he (ھے); Urdu writes ہے."""
    with translation.override("ur"):
        assert translation.gettext("This field is required.").startswith("یہ خانہ لازمی ہے")
        assert translation.gettext("Password confirmation") == "پاس ورڈ کی تصدیق"
