"""The dashboard (GET /) in a real browser: Debian's Chromium, headless, driven by selenium
through chromium-driver, against the real dtwin bridge and a real mosquitto on 127.0.0.1.

Screenshots at desktop and phone widths are written to .build/artifacts/ for people to look at.
"""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DTWIN = os.environ.get("DTWIN_BINARY", os.path.join(ROOT, ".build", "debug", "dtwin"))
ARTIFACTS = os.path.join(ROOT, ".build", "artifacts")
TOKEN = "dashboard-test-token-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout=10, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except Exception:  # the page is between two states: look again
            pass
        time.sleep(interval)
    return False


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def broker():
    directory = tempfile.mkdtemp(prefix="dtwin-dashboard-broker-")
    port = free_port()
    config = os.path.join(directory, "mosquitto.conf")
    with open(config, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % port)
        if os.geteuid() == 0:
            f.write("user root\n")
    process = subprocess.Popen(["mosquitto", "-c", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_until(lambda: listening(port), 10), "mosquitto did not start"
    yield port
    process.terminate()
    process.wait(timeout=10)


class Bridge:
    def __init__(self, broker_port, token):
        self.directory = tempfile.mkdtemp(prefix="dtwin-dashboard-")
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DTWIN_", "TWILIO_"))}
        env.update({
            "DTWIN_BROKER": "mqtt://127.0.0.1:%d" % broker_port, "DTWIN_CLIENTID": "dashboard-%d" % self.port,
            "DTWIN_HTTP_PORT": str(self.port), "DTWIN_STORE_PATH": os.path.join(self.directory, "twin.sqlite"),
            "DTWIN_SPOOL_PATH": os.path.join(self.directory, "spool"), "HOME": self.directory,
        })
        if token:
            env["DTWIN_API_TOKEN"] = token
        # A phone for uno1: its SMS requests reach the outbox (a dry run: no Twilio credentials).
        env["DTWIN_DEVICES"] = json.dumps({"uno1": {"phones": ["+12065550100"]}})
        self.log = open(os.path.join(self.directory, "bridge.log"), "w")
        self.process = subprocess.Popen([DTWIN, "bridge"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        assert wait_until(lambda: listening(self.port), 30), self.log_text()
        # Ready: connected and subscribed, so what devices publish from now on arrives.
        assert wait_until(lambda: call(self.url + "/readyz")[0] == 200, 30), self.log_text()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def log_text(self):
        with open(os.path.join(self.directory, "bridge.log")) as f:
            return f.read()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=15)


class Device:
    """uno1 as the sketch behaves on MQTT: online, readings, commands on its down topic."""

    def __init__(self, broker_port, name="uno1"):
        self.name = name
        self.commands = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dashboard-" + name)
        self.client.on_message = lambda c, u, m: self.commands.append(m.payload.decode())
        self.client.connect("127.0.0.1", broker_port)
        self.client.subscribe("dtwin/%s/down" % name, qos=1)
        self.client.loop_start()

    def publish(self, suffix, payload, retain=False):
        self.client.publish("dtwin/%s/%s" % (self.name, suffix), payload, qos=1, retain=retain).wait_for_publish(10)

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,900",
                     "--no-first-run", "--disable-extensions", "--proxy-server=direct://"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def shown(driver, element_id):
    return driver.find_element(By.ID, element_id).is_displayed()


def text(driver, selector):
    return driver.find_element(By.CSS_SELECTOR, selector).text


def screenshot(driver, name, width, height):
    os.makedirs(ARTIFACTS, exist_ok=True)
    driver.set_window_size(width, height)
    time.sleep(0.5)  # let the layout settle at the new width
    path = os.path.join(ARTIFACTS, name)
    assert driver.save_screenshot(path), path
    assert os.path.getsize(path) > 10_000, "an empty screenshot"
    return path


def test_log_in_watch_a_reading_arrive_and_set_the_led(broker, browser):
    bridge = Bridge(broker, TOKEN)
    device = Device(broker)
    try:
        device.publish("status", "online", retain=True)
        device.publish("up", '{"value":480,"led":false,"period":60,"firmware":"dtwin-uno 1.2"}')

        # Without a session: the login form, and no way in with a wrong token.
        browser.get(bridge.url + "/")
        assert wait_until(lambda: shown(browser, "login-view")), browser.page_source[:500]
        assert not shown(browser, "app")
        browser.find_element(By.ID, "token").send_keys("not-the-token")
        browser.find_element(By.ID, "login-button").click()
        assert wait_until(lambda: "wrong token" in text(browser, "#login-error")), text(browser, "#login-error")
        assert not shown(browser, "app")

        # The right token: the dashboard, with a session cookie the page's scripts cannot read.
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "login-button").click()
        assert wait_until(lambda: shown(browser, "app")), text(browser, "#login-error")
        cookie = browser.get_cookie("dtwin_session")
        assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
        assert browser.execute_script("return document.cookie") == ""
        assert TOKEN not in browser.page_source
        assert wait_until(lambda: text(browser, 'li[data-device="uno1"] .value') == "480"), text(browser, "#devices")
        assert wait_until(lambda: "broker connected" in text(browser, "#health"))

        # A reading published on MQTT appears, pushed by the server (no reload, no polling).
        started = time.monotonic()
        device.publish("up", "sim-uno1 data 777")
        assert wait_until(lambda: text(browser, 'li[data-device="uno1"] .value') == "777", 10), text(browser, "#devices")
        print("a reading reached the page %.2f s after it was published" % (time.monotonic() - started))
        assert wait_until(lambda: "readings in the last" in text(browser, "#chart-note"))

        # LED on: LIG goes to the device, and the twin shows it pending until the device says so.
        browser.find_element(By.ID, "led-on").click()
        assert wait_until(lambda: device.commands == ["LIG"], 10), device.commands
        assert wait_until(lambda: "pending (LIG)" in text(browser, 'tr[data-key="led"]')), text(browser, "#twin-rows")
        screenshot(browser, "dashboard-desktop-pending.png", 1366, 900)
        device.publish("up", '{"value":790,"led":true,"period":60,"firmware":"dtwin-uno 1.2"}')
        assert wait_until(lambda: text(browser, 'tr[data-key="led"]').split()[-1] == "done", 10), text(browser, "#twin-rows")
        assert "on" in text(browser, 'tr[data-key="led"]')
        assert "dtwin-uno 1.2" in text(browser, 'tr[data-key="firmware"]')

        # A dead letter and an SMS show up too, with their reasons and states.
        device.client.publish("dtwin/bad.name/up", "x", qos=1).wait_for_publish(10)
        assert wait_until(lambda: "invalid device name" in text(browser, "#dead"), 10), text(browser, "#dead")
        device.publish("sms", "door open")
        assert wait_until(lambda: "door open" in text(browser, "#sms") and "dry-run" in text(browser, "#sms"), 15), text(browser, "#sms")

        # A raw command from the page.
        browser.find_element(By.ID, "command").send_keys("READ")
        browser.find_element(By.CSS_SELECTOR, "#command-form button").click()
        assert wait_until(lambda: device.commands == ["LIG", "READ"], 10), device.commands

        desktop = screenshot(browser, "dashboard-desktop.png", 1366, 1000)
        phone = screenshot(browser, "dashboard-phone.png", 390, 844)
        # At phone width the page is one column: no horizontal scrolling.
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        print("screenshots:", desktop, phone)

        # Logging out ends the session: the API refuses the old cookie, the page shows the login.
        browser.set_window_size(1366, 900)
        session = cookie["value"]
        browser.find_element(By.ID, "logout").click()
        assert wait_until(lambda: shown(browser, "login-view"))
        status, _ = call(bridge.url + "/api/health", cookie=session)
        assert status == 401
        browser.get(bridge.url + "/")
        assert wait_until(lambda: shown(browser, "login-view"))
    finally:
        device.stop()
        bridge.stop()


def call(url, method="GET", cookie=None, headers=None, body=None):
    request = urllib.request.Request(url, method=method, data=body)
    if cookie:
        request.add_header("Cookie", "dtwin_session=" + cookie)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, parsed(response.read())
    except urllib.error.HTTPError as error:
        return error.code, parsed(error.read())


def parsed(body):
    try:
        return json.loads(body or b"{}")
    except ValueError:
        return {"text": body.decode(errors="replace")}


def test_a_change_from_another_site_is_refused_and_nothing_is_sent(broker):
    """The session cookie alone does not change anything: the page's own header is needed,
    which another site's page cannot set."""
    bridge = Bridge(broker, TOKEN)
    device = Device(broker, name="uno2")
    try:
        request = urllib.request.Request(bridge.url + "/login", method="POST", data=b"token=" + TOKEN.encode(),
                                         headers={"X-DTwin-Request": "1"})
        with urllib.request.urlopen(request, timeout=10) as response:
            session = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        status, body = call(bridge.url + "/api/devices/uno2/commands", "POST", cookie=session, body=b"LIG")
        assert status == 403 and "X-DTwin-Request" in body["error"], body
        status, _ = call(bridge.url + "/login", "POST", body=b"token=" + TOKEN.encode())
        assert status == 403, "a login without the page's header"
        status, sent = call(bridge.url + "/api/devices/uno2/commands", "POST", cookie=session, headers={"X-DTwin-Request": "1"},
                            body=b"READ")
        assert status == 200 and sent["command"] == "READ"
        assert wait_until(lambda: device.commands == ["READ"], 10), device.commands
    finally:
        device.stop()
        bridge.stop()


def test_without_a_token_the_page_says_how_to_enable_it(broker, browser):
    bridge = Bridge(broker, None)
    try:
        browser.get(bridge.url + "/")
        assert wait_until(lambda: shown(browser, "disabled-view")), browser.page_source[:500]
        assert "DTWIN_API_TOKEN" in text(browser, "#disabled-view")
        assert not shown(browser, "app") and not shown(browser, "login-view")
    finally:
        bridge.stop()


def test_an_open_stream_does_not_hold_up_the_bridges_exit(broker):
    """A dashboard left open: its stream carries pushes, and ends when the bridge stops, which
    then exits cleanly and at once (the stream is not a request it waits for)."""
    bridge = Bridge(broker, TOKEN)
    request = urllib.request.Request(bridge.url + "/api/events", headers={"Authorization": "Bearer " + TOKEN})
    stream = urllib.request.urlopen(request, timeout=10)
    assert stream.headers["Content-Type"] == "text/event-stream"
    first = b""
    while b"data: " not in first:
        first += stream.readline()
    push = json.loads(first.split(b"data: ", 1)[1])
    assert push["health"]["brokerConnected"] is True and push["dashboards"] == 1, push
    started = time.monotonic()
    bridge.process.terminate()
    assert bridge.process.wait(timeout=15) == 0
    print("the bridge exited %.2f s after SIGTERM with a stream open" % (time.monotonic() - started))
    stream.read()  # returns at the stream's end; a stream that outlived the bridge would time out here
    stream.close()
