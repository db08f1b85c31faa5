"""The console in a real browser (Debian's headless Chromium): an operator logs in, reads the
dashboard, replays a dead letter through its confirmation, and sees it sent by a real worker."""

import pytest
from django.contrib.auth import get_user_model
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from apps.notifications.models import Delivery, DeliveryStatus
from tests.notifications.factories import dead_delivery
from tests.support.processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("beat")]


@pytest.mark.timeout(120)  # a browser session, then up to 60 s for the replayed send
def test_an_operator_replays_a_dead_letter_from_the_dashboard_and_sees_it_sent(browser, web, worker, smtp):
    get_user_model().objects.create_superuser("operator", "operator@example.com", "a-long-password")
    dead = dead_delivery(attempts=3, error_code="451")
    wait = WebDriverWait(browser, 20)

    browser.get(f"{web}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("operator")
    browser.find_element(By.NAME, "password").send_keys("a-long-password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # The login's answer may still be on its way when the click returns (a slow machine, the
    # password's hashing): wait for the page after it, and for the dashboard after that.
    wait.until(expected_conditions.element_to_be_clickable((By.LINK_TEXT, "Dashboard"))).click()

    assert wait.until(expected_conditions.presence_of_element_located((By.ID, "dead-letter-total"))).text == "1"
    assert browser.find_element(By.CSS_SELECTOR, '#dead-letters tr[data-code="451"]').is_displayed()
    browser.find_element(By.LINK_TEXT, "email").click()  # the dead letters of that channel

    browser.find_element(By.CSS_SELECTOR, f'input[name="_selected_action"][value="{dead.id}"]').click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("replay")
    browser.find_element(By.CSS_SELECTOR, 'button[name="index"], input[name="index"]').click()
    summary = wait.until(expected_conditions.presence_of_element_located((By.CLASS_NAME, "console-summary"))).text
    assert summary.startswith("Replay 1 delivery")
    browser.find_element(By.ID, "console-confirm-submit").click()
    assert "Replayed 1 deliveries." in wait.until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".messagelist"))).text

    wait_until(lambda: Delivery.objects.get(pk=dead.pk).status == DeliveryStatus.SENT, timeout=60,
               message="the replayed delivery to be sent by the worker")
    assert len(smtp.received_for(dead.notification.recipient.email)) == 1
    browser.get(f"{web}/admin/notifications/notification/{dead.notification_id}/change/")
    assert browser.find_element(By.CSS_SELECTOR, '.console-timeline span[data-status="sent"]').is_displayed()
    browser.get(f"{web}/admin/notifications/notification/?q={dead.notification_id}")
    assert browser.find_element(By.CSS_SELECTOR, '#result_list span[data-status="sent"]').text == "email: sent"
    # Nothing the pages asked for failed (a missing icon would be a 404 here), and no script error.
    assert [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
