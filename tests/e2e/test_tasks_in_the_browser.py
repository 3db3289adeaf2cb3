"""The batch-tasks page in a real browser: upload, live progress from a real worker, the truth after a reload."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from tests.e2e.test_workspaces_in_the_browser import browser, wait_for  # noqa: F401 (the fixture)
from tests.servers import BatchWorker

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def row_state(driver) -> dict | None:
    # One script: live updates may redraw the row between two WebDriver calls.
    return driver.execute_script("""
        const row = document.querySelector('#tasks li');
        if (!row) return null;
        return {status: row.dataset.status, percent: row.querySelector('.percent').textContent,
                meta: row.querySelector('.meta').textContent,
                download: !row.querySelector('.download').hidden,
                failures: [...row.querySelectorAll('.failures li')].map(li => li.textContent)};
    """)


def open_tasks_page(driver, server, username: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{server.http}/tasks/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(f"{username}-pass")
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait_for(driver, EC.text_to_be_present_in_element((By.ID, "status"), "live"))


def test_upload_watch_live_progress_and_see_the_truth_after_a_reload(browser, daphnes, alice, tmp_path):  # noqa: F811
    server = daphnes[0]
    data = tmp_path / "people.csv"
    data.write_text("name,city\n" + "".join(f"P{i},<b>T{i}</b>\n" for i in range(40)) + "Lonely\n")
    template = tmp_path / "note.html"
    template.write_text("<p>{{ name }} of {{ city }}</p>")
    open_tasks_page(browser, server, "alice")

    browser.find_element(By.CSS_SELECTOR, "#create input[name=name]").send_keys("notes")
    browser.find_element(By.CSS_SELECTOR, "#create input[name=data_file]").send_keys(str(data))
    browser.find_element(By.CSS_SELECTOR, "#create input[name=template]").send_keys(str(template))
    browser.find_element(By.CSS_SELECTOR, "#create button").click()
    wait_for(browser, lambda d: (row_state(d) or {}).get("status") == "pending")  # no worker yet

    worker = BatchWorker(server.env)
    try:
        wait_for(browser, lambda d: row_state(d)["status"] == "completed", timeout=30)
    finally:
        worker.stop()
    done = row_state(browser)
    assert done["percent"] == "100%" and done["download"] is True
    assert done["meta"].startswith("41 / 41") and "1 failed" in done["meta"]
    assert done["failures"] == ["row 41: Missing field: city"]

    browser.refresh()  # a new connection: the list and snapshots come back from the server
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "status"), "live"))
    wait_for(browser, lambda d: (row_state(d) or {}).get("failures") == ["row 41: Missing field: city"])
    assert row_state(browser)["status"] == "completed"
