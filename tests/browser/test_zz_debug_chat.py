from tests.browser.test_chat import *  # noqa
from tests.views.test_chat import shared_file_database  # noqa

def test_debug(operator_page, browser):
    page = operator_page
    logs = []
    page.on("console", lambda m: logs.append((m.text[:300],)))
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => console.log('CSPV', e.sourceFile, e.lineNumber, e.columnNumber, e.sample, e.violatedDirective))")
    token_delay(20)
    page.goto("/chat/")
    send(page, "first")
    expect(page.locator("[data-turn]").last).to_have_attribute("data-status", "done", timeout=10000)
    token_delay(150)
    send(page, "Now stop me halfway")
    page.wait_for_timeout(1500)
    print(page.locator("[data-turn]").last.evaluate("e => e.outerHTML.slice(0, 600)"))
    for l in logs: print(l)
