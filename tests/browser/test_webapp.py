"""The web app in headless Chromium, through `players-api dev` and its local ALB: every test
has its own service, database and browsers, and fails on any browser console error or CSP
violation it did not provoke on purpose."""

from __future__ import annotations

import re
import urllib.parse

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from harness import APP_PATH, login

SAKA = dict(name="Bukayo Saka", date_of_birth="2001-09-05", country="ENG", team="Arsenal",
            position="forward", club_number=7, national_team_number=7)


def failed_load(path: str, status: int) -> str:
    """The console line Chromium logs for an HTTP error answer (allowed where provoked)."""
    return rf"{re.escape(path)}\S* - Failed to load resource: the server responded with a status of {status}"


def fill_player(b, **f):
    for name in ("name", "date_of_birth", "team", "club_number", "national_team_number"):
        if name in f:
            b.set_value(f"#p-{name}", "" if f[name] is None else str(f[name]))
    if "country" in f:
        b.select("#p-country", f["country"])
    if "position" in f:
        b.select("#p-position", f["position"])


def test_viewer_sees_players_and_who_they_are_but_no_way_to_change_them(app_as, service):
    saka = service.create_player(**SAKA)
    service.create_player(name="Leah Williamson", date_of_birth="1997-03-29", country="ENG",
                          team="Arsenal", position="defender", club_number=6)
    app = app_as("viewer")
    b = app.b
    assert app.rows() == ["Bukayo Saka", "Leah Williamson"]
    row = b.find(f'#players tr[data-id="{saka["id"]}"]').text
    for cell in ("Arsenal", "forward", "ENG", "2001-09-05", "7"):
        assert cell in row
    assert not b.find_all("#new-player"), "a viewer is offered no way to create"

    b.find("#whoami summary").click()
    b.wait_text("#whoami", "Vera Viewer")
    assert b.find("#me-groups").text == "players-viewer"
    assert b.find("#me-permissions").text == "players:read"

    b.find(f'#players tr[data-id="{saka["id"]}"] a').click()
    b.wait_text("h1", "Bukayo Saka")
    facts = b.wait_css("#player-facts").text
    assert "England (ENG)" in facts and "2001-09-05" in facts
    assert not b.find_all("#player-form"), "no edit form for a viewer"
    assert not b.find_all("#delete"), "no delete for a viewer"
    assert not b.find_all("#history"), "history is for admins"

    b.get(app.url("?view=new"))
    app.wait_ready()
    b.wait_text(".problem", "not allowed to add players")


def test_a_newcomer_opening_the_site_logs_in_and_lands_on_the_app(browsers, dev, service):
    # What `cargo run` prints: the local ALB's address. Its root asks for a login first, then
    # shows the web app itself (no page of the stand-in's own in between).
    service.create_player(**SAKA)
    b = browsers()
    b.get(f"{dev.base}/")
    b.wait_css("input[name=user][value=viewer]").click()
    b.find("form button[type=submit]").click()
    b.wait(lambda d: urllib.parse.urlsplit(d.current_url).path == "/", what="back at the root")
    b.wait_css("body[data-ready=true]")
    b.wait_css(".results[aria-busy=false]")
    assert [el.text for el in b.find_all("#players tbody th a")] == ["Bukayo Saka"]


def test_list_filters_sort_and_keyset_pages_live_in_the_url(app_as, service, browsers, dev):
    teams = ["Arsenal", "Chelsea"]
    for i in range(12):
        service.create_player(name=f"Player {i:02d}", date_of_birth=f"199{i % 10}-01-0{1 + i % 9}",
                              country=["ENG", "FRA", "BRA"][i % 3], team=teams[i % 2],
                              position=["goalkeeper", "defender", "midfielder", "forward"][i % 4])
    app = app_as("editor")
    b = app.b
    b.allowed.append(failed_load("/v1/players", 422))
    assert len(app.rows()) == 12
    b.screenshot("list")

    # Filter and sort through the form: the URL follows.
    b.set_value("#f-team", "Arsenal")
    b.select("#f-sort", "-name")
    b.find("#apply-filters").click()
    b.wait_url(r"team=Arsenal")
    assert "sort=-name" in b.driver.current_url
    names = app.rows()
    assert names == sorted([f"Player {i:02d}" for i in range(0, 12, 2)], reverse=True)
    assert all("Arsenal" in r.text for r in b.find_all("#players tbody tr"))

    b.select("#f-country", "FRA")
    b.find("#apply-filters").click()
    b.wait_url(r"country=FRA")
    assert app.rows() == ["Player 10", "Player 04"]

    # Keyset pages of 5: next, next, back, back.
    app.open("?limit=5&sort=name")
    page1 = app.rows()
    assert page1 == [f"Player {i:02d}" for i in range(5)]
    assert not b.find("#prev-page").is_enabled()
    b.find("#next-page").click()
    b.wait_text("#page-no", "Page 2")
    page2 = app.rows()
    assert page2 == [f"Player {i:02d}" for i in range(5, 10)]
    assert "cursor=" in b.driver.current_url
    b.find("#next-page").click()
    b.wait_text("#page-no", "Page 3")
    assert app.rows() == ["Player 10", "Player 11"]
    assert not b.find("#next-page").is_enabled(), "the last page has no next"
    b.find("#prev-page").click()
    b.wait_text("#page-no", "Page 2")
    assert app.rows() == page2
    bookmarked = b.driver.current_url
    b.find("#prev-page").click()
    b.wait_text("#page-no", "Page 1")
    assert app.rows() == page1

    # The browser's own back button walks the same pages.
    b.driver.back()
    b.wait_text("#page-no", "Page 2")
    assert app.rows() == page2

    # A bookmarked page opens the same view in another browser.
    other = browsers(name="list-bookmark")
    login(other, dev, "viewer", next_path=urllib.parse.urlsplit(bookmarked).path + "?" + urllib.parse.urlsplit(bookmarked).query)
    other.wait_css(".results[aria-busy=false]")
    assert [el.text for el in other.find_all("#players tbody th a")] == page2
    assert other.find("#f-sort").get_attribute("value") == "name"

    # Empty and error states.
    b.set_value("#f-name", "nobody-has-this-name")
    b.find("#apply-filters").click()
    b.wait_text("#list-empty", "No players match these filters")
    app.open("?country=XYZ")
    box = b.wait_css(".results .problem")
    assert "unknown FIFA code" in box.text or "country" in box.text
    request_id = b.find(".results .problem .request-id").text
    assert re.fullmatch(r"[0-9a-zA-Z-]{8,}", request_id), request_id


def test_create_sends_one_idempotency_key_per_submission_so_a_double_submit_creates_one_player(app_as, service):
    app = app_as("editor")
    b = app.b
    b.find("#new-player").click()
    b.wait_text("h1", "New player")
    fill_player(b, **SAKA)
    b.screenshot("new-player")
    # Two submissions of the same form before the first answer (a double click).
    b.js("const f = document.getElementById('player-form'); f.requestSubmit(); f.requestSubmit();")
    b.wait_text("#save-status", "Created Bukayo Saka")
    b.wait_text("h1", "Bukayo Saka")
    posts = b.requests("POST", r"/v1/players$")
    keys = {p["headers"].get("Idempotency-Key") for p in posts}
    assert len(posts) == 2 and len(keys) == 1 and None not in keys, posts
    assert [p["name"] for p in service.players()] == ["Bukayo Saka"]

    # A real double click on the button, for a second player: still one.
    b.find("#back-to-list").click()
    b.wait_css("#new-player").click()
    fill_player(b, name="Declan Rice", date_of_birth="1999-01-14", country="ENG", team="Arsenal",
                position="midfielder", club_number=41)
    ActionChains(b.driver).double_click(b.find("#save")).perform()
    b.wait_text("h1", "Declan Rice")
    assert sorted(p["name"] for p in service.players()) == ["Bukayo Saka", "Declan Rice"]
    keys = [p["headers"].get("Idempotency-Key") for p in b.requests("POST", r"/v1/players$")]
    assert len(set(keys)) == 2, "a new submission gets a new key"


def test_validation_errors_are_shown_at_their_fields_and_focus_moves_to_the_first(app_as, service):
    service.create_player(**SAKA)
    app = app_as("editor")
    b = app.b
    b.allowed += [failed_load("/v1/players", 422), failed_load("/v1/players", 409)]
    app.open("?view=new")
    fill_player(b, name="", date_of_birth="2001-02-30", country="ENG", team="Arsenal",
                position="forward", club_number=150)
    b.find("#save").click()
    err = b.wait_css("#p-club_number-error")
    assert "99" in err.text, err.text
    assert b.find("#p-name-error").is_displayed()
    assert b.find("#p-date_of_birth-error").is_displayed()
    assert b.focused().get_attribute("id") == "p-name", "focus on the first field in error"
    assert b.find("#p-club_number").get_attribute("aria-invalid") == "true"
    assert "p-club_number-error" in b.find("#p-club_number").get_attribute("aria-describedby")
    assert b.find("#form-problem .request-id").text
    b.screenshot("new-player-errors")

    # The club number of someone else in the team: 409 at the club-number field.
    fill_player(b, name="Another Seven", date_of_birth="2000-01-01", club_number=7)
    b.find("#save").click()
    err = b.wait_text("#p-club_number-error", "already")
    assert err.get_attribute("data-code") == "club_number_taken"
    assert not b.find("#p-name-error").is_displayed(), "old errors are cleared"
    assert b.focused().get_attribute("id") == "p-club_number"
    assert [p["name"] for p in service.players()] == ["Bukayo Saka"]


def test_edit_with_if_match_and_a_conflict_from_a_second_session_is_never_overwritten(app_as, service):
    saka = service.create_player(**SAKA)
    admin = app_as("admin", name="conflict-admin")
    admin.b.allowed.append(failed_load(f"/v1/players/{saka['id']}", 412))
    admin.open(f"?view=player&id={saka['id']}")
    admin.b.wait_css("#player-form")
    editor = app_as("editor", name="conflict-editor")
    editor.open(f"?view=player&id={saka['id']}")
    editor.b.wait_css("#player-form")

    # The editor saves first.
    editor.b.set_value("#p-team", "Chelsea")
    editor.b.find("#save").click()
    editor.b.wait_text("#save-status", "Saved")

    # The admin, still on the old version, saves a change: 412, nothing overwritten.
    admin.b.set_value("#p-name", "Bukayo Ayoyinka Saka")
    admin.b.find("#save").click()
    box = admin.b.wait_css("#conflict")
    assert "Someone else changed this player" in box.text
    assert admin.b.focused().get_attribute("id") == "conflict"
    admin.b.screenshot("conflict")
    _, _, now = service.call("GET", f"/v1/players/{saka['id']}")
    assert now["name"] == "Bukayo Saka" and now["team"] == "Chelsea" and now["version"] == 2
    ifmatch = [r["headers"].get("If-Match") for r in admin.b.requests("PATCH", saka["id"])]
    assert ifmatch == ['"1"'], ifmatch

    # Reload shows the editor's change; saving again works.
    admin.b.find("#reload-player").click()
    admin.b.wait(lambda d: d.find_element("css selector", "#p-team").get_attribute("value") == "Chelsea",
                 what="the reloaded team")
    admin.b.set_value("#p-name", "Bukayo Ayoyinka Saka")
    admin.b.find("#save").click()
    admin.b.wait_text("#save-status", "Saved")
    admin.b.wait_text("h1", "Bukayo Ayoyinka Saka")

    # The admin sees the history: who, when, what changed, request id.
    rows = admin.b.wait(lambda d: len(d.find_elements("css selector", "#history-table tbody tr")) == 3 and
                        d.find_elements("css selector", "#history-table tbody tr"), what="three history rows")
    texts = [r.text for r in rows]
    assert "update" in texts[0] and "you" in texts[0] and "name: Bukayo Saka → Bukayo Ayoyinka Saka" in texts[0]
    assert "team: Arsenal → Chelsea" in texts[1] and "user a0000000-0000-4000-8000-000000000002" in texts[1]
    assert "create" in texts[2] and "service local-service" in texts[2]
    assert all(re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", t) for t in texts)
    assert all(r.find_element("css selector", ".request-id").text for r in rows)
    admin.b.screenshot("player-history", full_page=True)
    assert not editor.b.find_all("#history"), "an editor sees no history"


def test_delete_asks_for_confirmation(app_as, service):
    saka = service.create_player(**SAKA)
    app = app_as("editor")
    b = app.b
    app.open(f"?view=player&id={saka['id']}")
    b.wait_css("#delete").click()
    dialog = b.wait_css("#confirm-delete")
    assert "Delete Bukayo Saka?" in dialog.text
    b.find("#confirm-delete-no").click()
    b.wait_gone("#confirm-delete")
    assert len(service.players()) == 1
    b.find("#delete").click()
    b.wait_css("#confirm-delete-yes").click()
    b.wait_text("#flash", "Deleted Bukayo Saka")
    b.wait_text("#list-empty", "No players yet")
    assert service.players() == []
    assert [r["headers"].get("If-Match") for r in b.requests("DELETE", saka["id"])] == ['"1"']


def test_a_403_from_the_server_is_shown_as_such(app_as, dev, service):
    # The editor's form is open when their permissions are taken away (here: the same browser
    # logs in again as a viewer); the page still offers the form, the server refuses.
    app = app_as("editor")
    b = app.b
    b.allowed.append(failed_load("/v1/players", 403))
    app.open("?view=new")
    fill_player(b, **SAKA)
    first = b.driver.current_window_handle
    b.driver.switch_to.new_window("tab")
    login(b, dev, "viewer")
    b.driver.switch_to.window(first)
    b.find("#save").click()
    box = b.wait_css("#form-problem .problem")
    assert "You are not allowed to do this" in box.text and "players:write" in box.text
    assert box.get_attribute("data-status") == "403"
    assert box.find_element("css selector", ".request-id").text
    assert service.players() == []


def test_logout_and_an_ended_session_lead_back_to_the_login(app_as, dev):
    app = app_as("viewer")
    b = app.b
    # The session ends (cookie gone, as when it expires): the next call goes back to the login.
    b.driver.delete_cookie("AWSELBAuthSessionCookie-0")
    b.find("#apply-filters").click()
    # Through the local ALB's authenticate-oidc redirect to the provider's login form.
    b.wait_css("input[name=user]")
    login(b, dev, "viewer")
    app.wait_ready()

    b.find("#logout").click()
    b.wait_text("h1", "Signed out")
    assert b.driver.get_cookie("AWSELBAuthSessionCookie-0") is None
    b.get(app.url())
    b.wait_css("input[name=user]")


def test_keyboard_only_at_375_px_with_every_input_labelled(app_as, service):
    service.create_player(**SAKA)
    app = app_as("editor", width=375, height=812)
    b = app.b
    assert app.rows() == ["Bukayo Saka"]
    assert b.js("return window.innerWidth") == 375
    overflow = b.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at 375 px"
    b.screenshot("list-375px")

    unlabelled = b.js("""return [...document.querySelectorAll('input, select, textarea')]
        .filter(e => e.type !== 'hidden' && e.labels.length === 0).map(e => e.id || e.name)""")
    assert unlabelled == []

    # Tab from the top of the page to "New player", Enter, fill the form by keyboard, Enter.
    tabs = 0
    while b.focused().get_attribute("id") != "new-player" and tabs < 20:
        ActionChains(b.driver).send_keys(Keys.TAB).perform()
        tabs += 1
    assert b.focused().get_attribute("id") == "new-player"
    b.focused().send_keys(Keys.ENTER)
    b.wait_text("h1", "New player")
    assert b.focused().get_attribute("id") == "p-name"
    unlabelled = b.js("""return [...document.querySelectorAll('input, select')]
        .filter(e => e.labels.length === 0).map(e => e.id)""")
    assert unlabelled == []
    keys = ["Declan Rice", Keys.TAB, "1999-01-14", Keys.TAB, "England", Keys.TAB, "Arsenal", Keys.TAB,
            "midfielder", Keys.TAB, "41", Keys.ENTER]
    ActionChains(b.driver).send_keys(*keys).perform()
    b.wait_text("h1", "Declan Rice")
    created = [p for p in service.players() if p["name"] == "Declan Rice"]
    assert created and created[0]["country"] == "ENG" and created[0]["position"] == "midfielder"
    b.screenshot("player-375px")


def test_text_contrast_meets_wcag_aa_on_every_main_screen(app_as, service):
    # The list, a player's page with its history, the edit form showing validation errors, and
    # a problem box: every piece of visible text against its background.
    saka = service.create_player(**SAKA)
    app = app_as("admin")
    b = app.b
    b.allowed.append(failed_load("/v1/players", 422))
    failures = {"list": b.contrast_failures()}
    b.find(f'#players tr[data-id="{saka["id"]}"] a').click()
    b.wait_text("h1", "Bukayo Saka")
    b.wait_css("#player-form")
    failures["player"] = b.contrast_failures()
    b.set_value("#p-name", "")
    b.find("#save").click()
    b.wait_css("#p-name-error")
    failures["form with errors"] = b.contrast_failures()
    bad = {screen: f for screen, f in failures.items() if f}
    assert not bad, bad


def test_a_401_from_the_api_under_a_live_session_logs_in_again_then_says_so(app_as, service):
    # The ALB session is alive but the API refuses the request (here: the browser also sends a
    # bearer token the service does not accept). The app loads the page again, which is what
    # logs a browser in behind the ALB; when the API still refuses, it says so, once, instead
    # of reloading forever.
    service.create_player(**SAKA)
    app = app_as("viewer")
    b = app.b
    b.allowed += [failed_load(path, 401) for path in ("/v1/players", "/v1/me", "/v1/countries")]
    b.driver.execute_cdp_cmd("Network.enable", {})
    b.driver.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": "Bearer not-a-token"}})
    b.js("window.beforeTheReload = true")
    b.find("#apply-filters").click()
    b.wait(lambda d: d.execute_script("return window.beforeTheReload === undefined"),
           what="the page loaded again")
    banner = b.wait_text("#banner", "session has ended or is not accepted")
    assert banner.find_element("css selector", 'a[href="/logout"]')
    # Once the request is acceptable again, the same page works.
    b.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
    app.open()
    assert app.rows() == ["Bukayo Saka"]


def test_the_list_shows_that_it_is_loading(app_as, service):
    service.create_player(**SAKA)
    app = app_as("viewer")
    b = app.b
    # Every request now takes 1.5 s more: long enough to see the loading state, which the
    # test waits for rather than sleeping.
    b.driver.execute_cdp_cmd("Network.enable", {})
    b.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 1500, "downloadThroughput": -1, "uploadThroughput": -1})
    b.find("#apply-filters").click()
    busy = b.wait_css(".results[aria-busy=true]")
    assert b.find("#list-loading").is_displayed()
    assert "Loading players" in b.find("#list-loading").text
    b.wait_css(".results[aria-busy=false]", timeout=30)
    assert not b.find_all("#list-loading") or not b.find("#list-loading").is_displayed()
    assert busy
    b.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
