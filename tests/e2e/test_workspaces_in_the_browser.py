"""The workspaces page in a real browser (Debian's Chromium): two tabs of one user stay in sync."""

import shutil
from unittest.mock import patch

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from realtime.delivery import resync
from realtime.groups import user_group
from realtime.publish import publish
from workspaces import services
from workspaces.models import Workspace

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by its chromedriver (``make test`` installs both when missing)."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not chromedriver:
        raise RuntimeError("Browser tests need Debian's chromium and chromium-driver: run them with `make test`.")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    yield driver
    driver.quit()


def wait_for(driver, condition, timeout: float = 10):
    return WebDriverWait(driver, timeout).until(condition)


def row_names(driver) -> list[str]:
    # Read in one script: a live update may redraw the rows between two WebDriver calls.
    return driver.execute_script("return [...document.querySelectorAll('#workspaces .rename input')].map(i => i.value)")


def open_workspaces_page(driver, server, username: str) -> None:
    """Sign in through the login form (each test's users are new), land on /workspaces/, wait until live."""
    driver.delete_all_cookies()
    driver.get(f"{server.http}/workspaces/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(f"{username}-pass")
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait_for(driver, EC.text_to_be_present_in_element((By.ID, "status"), "live"))


def test_a_change_in_one_tab_appears_in_the_other(browser, daphnes, alice):
    server = daphnes[0]
    open_workspaces_page(browser, server, "alice")
    first_tab = browser.current_window_handle

    browser.switch_to.new_window("tab")
    browser.get(f"{server.http}/workspaces/")
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "status"), "live"))
    second_tab = browser.current_window_handle

    browser.switch_to.window(first_tab)
    browser.find_element(By.CSS_SELECTOR, "#create input[name=name]").send_keys("Made in tab one")
    browser.find_element(By.CSS_SELECTOR, "#create button").click()

    browser.switch_to.window(second_tab)
    wait_for(browser, lambda d: row_names(d) == ["Made in tab one"])
    name = browser.find_element(By.CSS_SELECTOR, "#workspaces .rename input")
    name.clear()
    name.send_keys("Renamed in tab two")
    browser.find_element(By.CSS_SELECTOR, "#workspaces .rename button").click()

    browser.switch_to.window(first_tab)
    wait_for(browser, lambda d: row_names(d) == ["Renamed in tab two"])
    assert "v2" in browser.find_element(By.CSS_SELECTOR, "#workspaces .meta").text


def test_an_edit_overtaken_by_another_member_is_shown_as_a_conflict_not_lost(browser, daphnes, alice, bob):
    workspace = services.create_workspace(owner=alice, name="Shared plan")
    services.share_workspace(actor=alice, workspace_id=workspace.pk, user_id=bob.pk, role="editor")
    open_workspaces_page(browser, daphnes[1], "alice")  # the other process: bob's update crosses Redis
    wait_for(browser, lambda d: "Shared plan" in row_names(d))
    name = browser.find_element(By.CSS_SELECTOR, f'#workspaces li[data-id="{workspace.pk}"] .rename input')
    name.clear()
    name.send_keys("Alice's idea")

    services.update_workspace(actor=bob, workspace_id=workspace.pk, version=1, changes={"name": "Bob's idea"})
    row = f'#workspaces li[data-id="{workspace.pk}"]'
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, f"{row} .meta"), "v2"))
    assert browser.find_element(By.CSS_SELECTOR, f"{row} .rename input").get_attribute("value") == "Alice's idea"

    browser.find_element(By.CSS_SELECTOR, f"{row} .rename button").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "notice"), "changed by someone else"))
    assert browser.find_element(By.CSS_SELECTOR, f"{row} .rename input").get_attribute("value") == "Bob's idea"
    stored = Workspace.objects.get(pk=workspace.pk)
    assert (stored.name, stored.version) == ("Bob's idea", 2)


def test_a_user_with_50_workspaces_of_30kb_settings_sees_them_all(browser, daphnes, alice):
    # 1.5 MB of workspaces: one workspace.list reply could not hold them (issue 20, item 12).
    created = [
        services.create_workspace(owner=alice, name=f"Big {n:02}", settings={"blob": "x" * 30_000}) for n in range(50)
    ]
    open_workspaces_page(browser, daphnes[0], "alice")
    wait_for(browser, lambda d: row_names(d) == [w.name for w in created], timeout=20)
    assert browser.find_element(By.ID, "notice").text == ""


def test_a_workspace_whose_event_was_lost_appears_on_resync(browser, daphnes, alice):
    services.create_workspace(owner=alice, name="Known")
    open_workspaces_page(browser, daphnes[0], "alice")
    wait_for(browser, lambda d: row_names(d) == ["Known"])  # the first load is done
    with patch("realtime.delivery.outbox.send_to_layer", side_effect=ConnectionError("test: the event is lost")):
        services.create_workspace(owner=alice, name="Created unannounced")
    resync.take_lost_message()  # this process announces nothing: the test sends the resync
    assert row_names(browser) == ["Known"]
    publish(user_group(alice.pk), "resync", {"reason": "publish_failed"})
    wait_for(browser, lambda d: row_names(d) == ["Known", "Created unannounced"])
    assert browser.find_element(By.ID, "status").text == "live"  # caught up on the open socket
