"""Counted words through ngettext in both languages: "1 credit", "just now", "3 minutes ago"."""

from datetime import timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone, translation

from rivya_dashboard.bidi import isolate_numbers
from rivya_dashboard.console.templatetags.quantities import ago_text, credits

NOW = timezone.now()


@pytest.mark.parametrize(
    ("value", "english", "urdu"),
    [
        (1, "1 credit", "\u20681\u2069 کریڈٹ"),
        (3, "3 credits", "\u20683\u2069 کریڈٹس"),
        ("1.5", "1.50 credits", "\u20681.50\u2069 کریڈٹس"),
        (1000, "1,000 credits", "\u20681,000\u2069 کریڈٹس"),
    ],
)
def test_credits_take_the_plural_form_of_their_number(value, english, urdu):
    with translation.override("en"):
        assert credits(value) == english
    with translation.override("ur"):
        assert credits(value) == urdu


@pytest.mark.parametrize(
    ("seconds", "english", "urdu"),
    [
        (0, "just now", "ابھی ابھی"),
        (59, "just now", "ابھی ابھی"),
        (60, "1 minute ago", "\u20681\u2069 منٹ پہلے"),
        (3 * 60 + 5, "3 minutes ago", "\u20683\u2069 منٹ پہلے"),
        (3600, "1 hour ago", "\u20681\u2069 گھنٹہ پہلے"),
        (5 * 3600, "5 hours ago", "\u20685\u2069 گھنٹے پہلے"),
        (2 * 86400, "2 days ago", "\u20682\u2069 دن پہلے"),
    ],
)
def test_ages_say_just_now_under_a_minute_and_ago_after(seconds, english, urdu):
    then = NOW - timedelta(seconds=seconds)
    with translation.override("en"):
        assert ago_text(then, NOW) == english
    with translation.override("ur"):
        assert ago_text(then, NOW) == urdu


def test_templates_read_the_filters_without_loading_them():
    rendered = Template("{{ n|credits }} · {{ at|ago }}").render(
        Context({"n": 1, "at": timezone.now()})
    )
    assert rendered == "1 credit · just now"


def test_numbers_built_in_python_are_isolated_on_right_to_left_pages_only():
    with translation.override("en"):
        assert isolate_numbers("07 Nov") == "07 Nov"
    with translation.override("ur"):
        assert isolate_numbers("07 نومبر") == "\u206607\u2069 نومبر"
