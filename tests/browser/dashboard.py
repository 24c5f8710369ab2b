"""The dashboard in a real browser: headless Chromium driven by Selenium against a
harness with its real PostgreSQL and Mosquitto (./scripts/test-browser starts them).

One story, as an operator lives it: sign up, create a network and sensors, rename one,
issue the sensor's broker credentials, publish 28 days of hourly measurements and some
logs over MQTT with them, see the charts and the logs, send a configuration and see it
acknowledged after a heartbeat, log out, and find an ended session sent back to the
login with a message. Every screen is photographed (desktop and 360 px wide) into
--output. Any browser console error fails the run, except the answers the test itself
provokes (named at each step).

Figures printed: the dashboard's files gzipped, and the sensor page with 28 days of
hourly data rendered, as the page measures it with the Performance API
(`performance.measure("sensor:render")`, from the screen's start to the charts drawn).
"""

import argparse
import gzip
import json
import math
import pathlib
import re
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
ASSETS = REPOSITORY / "functions" / "dashboard"
WAIT_SECONDS = 30
HOUR = 3600
DAYS = 28


class Failure(Exception):
    pass


class Dashboard:
    def __init__(self, base_url, mqtt_port, output, headed):
        self.base_url = base_url
        self.mqtt_port = mqtt_port
        self.output = output
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        if not headed:
            options.add_argument("--headless=new")
        for argument in ("--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                         "--disable-gpu", "--no-first-run", "--lang=en-GB"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        self.driver.set_script_timeout(WAIT_SECONDS)
        self.allowed = []

    # --- the browser -----------------------------------------------------------------

    def open(self, hash_path=""):
        self.driver.get(f"{self.base_url}/dashboard/{hash_path}")

    def wait(self, condition, what):
        try:
            return WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.2,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(
                lambda driver: condition())
        except TimeoutException:
            self.screenshot("failure")
            raise Failure(f"waited {WAIT_SECONDS} s for {what}; "
                          f"the page says: {self.text('main')[:1500]}") from None

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css):
        # In one script: the page re-renders while it refreshes, so elements found in one
        # call may be gone by the next.
        return self.driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText).join(' ')",
            css)

    def wait_text(self, css, pattern, what=None):
        regex = re.compile(pattern)
        return self.wait(lambda: regex.search(self.text(css)), what or f"{pattern!r} in {css}")

    def button(self, label, within="main"):
        for element in self.find_all(f"{within} button"):
            if element.text.strip() == label and element.is_displayed():
                return element
        raise Failure(f"no button {label!r} in {within}")

    def fill(self, css, text):
        element = self.find(css)
        element.clear()
        element.send_keys(text)
        return element

    def screenshot(self, name):
        self.driver.save_screenshot(str(self.output / f"{name}.png"))

    def screenshots(self, name):
        """The screen on a desktop (the whole page, up to 2,400 px) and 360 px wide (the
        top of it, where nothing may overflow sideways)."""
        self.driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 1280, "height": min(max(height, 800), 2400), "deviceScaleFactor": 1,
            "mobile": False})
        try:
            self.screenshot(f"{name}-desktop")
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 360, "height": 800, "deviceScaleFactor": 2, "mobile": True})
        try:
            time.sleep(0.3)  # a layout pass and the charts' resize observer
            self.driver.execute_script("window.scrollTo(0, 0)")
            overflow = self.driver.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 0:
                raise Failure(f"{name}: {overflow} px wider than a 360 px screen")
            self.screenshot(f"{name}-360px")
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def check_console(self, step):
        """Fails on any console error but those `allow` expected during this step."""
        errors = []
        for entry in self.driver.get_log("browser"):
            if entry["level"] not in ("SEVERE", "ERROR"):
                continue
            if any(re.search(pattern, entry["message"]) for pattern in self.allowed):
                continue
            errors.append(entry["message"])
        self.allowed = []
        if errors:
            raise Failure(f"{step}: browser console errors:\n  " + "\n  ".join(errors))

    def allow(self, pattern):
        self.allowed.append(pattern)

    # --- the server, as a sensor sees it ----------------------------------------

    def publish(self, credentials, topic, payload):
        sensor = credentials["client_identifier"]
        subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.mqtt_port), "-i", sensor,
             "-u", credentials["user_name"], "-P", credentials["password"], "-q", "1",
             "-t", f"{topic}/{sensor}", "-m", json.dumps(payload)],
            check=True, timeout=20)


def step(name):
    print(f"-- {name}", flush=True)


def story(page):
    user = f"operator-{int(time.time())}"

    step("the root sends a browser to the dashboard, which asks for a login")
    page.driver.get(f"{page.base_url}/")
    page.wait(lambda: "/dashboard/" in page.driver.current_url, "the redirect to /dashboard/")
    page.wait_text("main h1", "Log in")
    page.screenshots("login")
    page.check_console("login")

    step("sign up: a bad name is explained before anything is sent")
    page.find("main a[href='#/signup']").click()
    page.wait_text("main h1", "Create an account")
    page.fill("input[name=user_name]", "Not Valid")
    page.fill("input[name=password]", "a long enough password")
    page.button("Sign up").click()
    page.wait_text(".error", "lowercase letters")
    page.screenshots("signup")
    page.fill("input[name=user_name]", user)
    page.button("Sign up").click()
    page.wait_text("main h1", "^Networks$")
    token = page.driver.execute_script("return sessionStorage.getItem('sensorium.token')")
    if not re.fullmatch(r"[0-9a-f]{64}", token or ""):
        raise Failure(f"no token in sessionStorage after signing up: {token!r}")
    page.check_console("sign up")

    step("create a network; a taken name is refused in words")
    page.wait_text("main", "No networks yet")
    page.fill("input[name=network_name]", "rooftops")
    page.button("Create network").click()
    page.wait_text("main h1", "Network rooftops")
    page.open("#/networks")
    page.wait_text("main ul.links", "rooftops")
    page.allow(r"/networks - Failed to load resource: .* 409")
    page.fill("input[name=network_name]", "rooftops")
    page.button("Create network").click()
    page.wait_text(".error", r"exists already\. \(Conflict\)")
    page.screenshots("networks")
    page.check_console("networks")
    page.find("main ul.links a").click()
    page.wait_text("main h1", "Network rooftops")
    network = page.driver.current_url.rsplit("/", 1)[-1]

    step("create sensors and rename one")
    for name in ("mast-one", "silent"):
        page.fill("input[name=sensor_name]", name)
        page.button("Create sensor").click()
        page.wait_text("main h1", f"Sensor {name}")
        page.open(f"#/networks/{network}")
        page.wait_text("table.sensors", name)
    row = next(row for row in page.find_all("table.sensors tbody tr") if "mast-one" in row.text)
    row.find_element(By.XPATH, ".//button[normalize-space()='Rename']").click()
    rename = page.find("table.sensors input")
    rename.send_keys(Keys.CONTROL, "a")
    rename.send_keys("mast-north", Keys.ENTER)
    page.wait_text("table.sensors", "mast-north")
    if "offline" not in page.text("table.sensors"):
        raise Failure("a sensor never heard from is not marked offline")
    page.check_console("sensors")

    step("issue the sensor's credentials: the secret is shown once, with a mosquitto_pub line")
    page.find("table.sensors a").click()  # sorted by name: mast-north first
    page.wait_text("main h1", "Sensor mast-north")
    sensor = page.driver.current_url.split("/sensors/", 1)[1].split("?")[0]
    page.wait_text("#credentials", "None issued")
    page.button("Issue credentials", "#credentials").click()
    page.wait_text("#credentials .secret", "Shown once")
    fields = [element.text for element in page.find_all("#credentials .secret pre.value")]
    credentials = {"client_identifier": fields[0], "user_name": fields[1], "password": fields[2]}
    if credentials["client_identifier"] != sensor:
        raise Failure(f"the credentials name {fields[0]}, not the sensor {sensor}")
    command = page.text("#credentials pre.command")
    if f"-P '{credentials['password']}'" not in command or f"measurements/{sensor}" not in command:
        raise Failure(f"the mosquitto_pub line lacks the credentials: {command}")
    page.wait_text("#credentials", "Issued")
    page.check_console("credentials")

    step("publish 28 days of hourly measurements and some logs over MQTT")
    now = time.time()
    hours = DAYS * 24
    measurements = [
        {"timestamp": now - (hours - index) * HOUR,
         "value": {"temperature": round(18 + 6 * math.sin(index / 24 * 2 * math.pi), 3),
                   "humidity": round(55 + 20 * math.cos(index / 60), 3)}}
        for index in range(hours)
    ]
    for start in range(0, hours, 200):
        page.publish(credentials, "measurements", {"measurements": measurements[start:start + 200]})
    page.publish(credentials, "log-messages", {"log_messages": [
        {"severity": "info", "timestamp": now - 120, "subject": "Booted"},
        {"severity": "warning", "timestamp": now - 60, "subject": "Battery low",
         "details": "3.41 V"},
        {"severity": "error", "timestamp": now - 30, "subject": "The CPU is burning",
         "details": "Please call the fire department"},
    ]})

    step("the charts, the newest values and the logs appear")
    page.wait_text("main .latest", "temperature", "the newest values")
    page.wait_text("table.logs", "The CPU is burning", "the log in the table")
    page.wait_text("#logs", "Battery low")
    page.wait_text("main", "online")
    page.open(f"#/networks/{network}/sensors/{sensor}?range=week")
    page.wait(lambda: len(page.find_all("#measurements figure.chart canvas")) >= 2,
              "a chart per attribute")
    captions = page.text("#measurements figcaption")
    if "humidity" not in captions or "temperature" not in captions:
        raise Failure(f"the charts are {captions!r}")
    Select(page.find("#logs select")).select_by_value("error")
    page.wait(lambda: "Battery low" not in page.text("table.logs"), "the severity filter")
    page.wait_text("table.logs", "The CPU is burning")
    Select(page.find("#logs select")).select_by_value("all")
    page.screenshots("sensor")
    page.check_console("charts and logs")

    step("the sensor page with 28 days of hourly data: render time")
    page.open(f"#/networks/{network}")  # leave, so that the next load starts afresh
    page.wait_text("main h1", "Network rooftops")
    page.open(f"#/networks/{network}/sensors/{sensor}?range=28d")
    page.wait(lambda: page.find("#measurements .charts").get_attribute("data-rendered") == "true"
              and page.find_all("#measurements figure.chart"), "the 28-day charts")
    rendered = page.driver.execute_script(
        "const m = performance.getEntriesByName('sensor:render'); return m.length ? m.at(-1).duration : null")
    mode = page.find("#measurements .charts").get_attribute("data-mode")
    interval = page.find("#measurements .charts").get_attribute("data-interval")
    charts = page.driver.execute_script(
        "return document.querySelectorAll('#measurements .u-over').length")
    # 672 hours on a chart a few hundred pixels wide: the server's buckets, not raw points.
    assert mode == "aggregate", f"the 28-day charts show {mode} points, not the server's buckets"
    assert "did not aggregate" not in page.text("#measurements"), page.text("#measurements")
    page.screenshots("sensor-28-days")
    page.check_console("28 days")

    step("the network overview shows the silent sensor")
    page.open(f"#/networks/{network}")
    page.wait(lambda: len(page.find_all(".heatrow")) == 2, "a heat map row per sensor")
    if "silent" not in page.text(".heatrow.silent"):
        raise Failure("the sensor without measurements does not stand out")
    page.wait_text("table.sensors", "online")
    page.screenshots("network")
    page.check_console("overview")

    step("a configuration: checked before sending, published, acknowledged by a heartbeat")
    page.open(f"#/networks/{network}/sensors/{sensor}")
    page.wait_text("#configurations", "No configurations yet")
    editor = page.find("#configurations textarea")
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys('{"interval": ')
    page.wait_text("#configuration-check", "not JSON")
    if page.button("Send configuration", "#configurations").is_enabled():
        raise Failure("invalid JSON can be sent")
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys('["not", "an", "object"]')
    page.wait_text("#configuration-check", "JSON object")
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys('{"interval": 60, "unit": "celsius"}')
    page.wait_text("#configuration-check", "A valid JSON object")
    page.button("Send configuration", "#configurations").click()
    page.wait_text("#configurations", "Sent as revision 0")
    page.wait(lambda: "waiting" not in page.text("#configurations tr[data-revision='0'] td:nth-child(3)"),
              "the configuration published")
    page.publish(credentials, "heartbeats",
                 {"heartbeats": [{"revision": 0, "timestamp": time.time(), "success": True}]})
    page.wait_text("#configurations tr[data-revision='0']", "acknowledged",
                   "the acknowledgement after the heartbeat")
    page.wait_text("main dl.status", r"Acknowledged configuration\s*0")
    page.screenshots("configurations")
    page.check_console("configurations")

    step("exports: the chosen range downloaded as CSV and NDJSON")
    for button in ("Measurements CSV", "Logs NDJSON"):
        page.button(button, "#measurements").click()
        page.wait(lambda: "Working" not in page.text("#measurements .exports + .messages"),
                  "the export's outcome")
        export = page.text("#measurements .exports + .messages")
        assert not export, f"{button}: {export}"
    page.check_console("exports")

    step("replace the credentials: a question first, then a new secret")
    page.button("Replace", "#credentials").click()
    page.button("Yes, replace", "#credentials").click()
    page.wait(lambda: page.find_all("#credentials .secret pre.value")
              and page.find_all("#credentials .secret pre.value")[2].text != credentials["password"],
              "a new password")
    page.screenshots("credentials")
    page.check_console("replace credentials")

    step("log out, and an ended session is sent back to the login with a message")
    page.find("#logout").click()
    page.wait_text("main", "You are logged out")
    if page.driver.execute_script("return sessionStorage.getItem('sensorium.token')"):
        raise Failure("the token is still in sessionStorage after logging out")
    page.allow(r"/networks - Failed to load resource: .* 401")
    page.driver.execute_script(
        "sessionStorage.setItem('sensorium.token', arguments[0]); location.hash = '#/networks'", token)
    page.wait_text("main", "Your session has ended")
    page.screenshots("session-ended")
    page.check_console("log out")

    step("log in again from the keyboard")
    page.find("input[name=user_name]").send_keys(user, Keys.TAB, "a long enough password",
                                                 Keys.ENTER)
    page.wait_text("main h1", "^Networks$")
    page.check_console("log in")

    step("a token past its expiration time is dropped before it is sent")
    page.driver.execute_script("sessionStorage.setItem('sensorium.expiration', '1')")
    page.driver.refresh()
    page.wait_text("main", "Your session has ended")
    page.check_console("expired token")

    return {"rendered": rendered, "mode": mode, "interval": interval, "charts": charts}


def gzipped_sizes():
    sizes = {}
    for path in sorted(ASSETS.rglob("*")):
        if path.is_file():
            sizes[str(path.relative_to(ASSETS))] = (
                path.stat().st_size, len(gzip.compress(path.read_bytes(), compresslevel=9)))
    return sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--mqtt-port", required=True, type=int)
    parser.add_argument("--output", required=True, type=pathlib.Path)
    parser.add_argument("--headed", action="store_true")
    arguments = parser.parse_args()
    arguments.output.mkdir(parents=True, exist_ok=True)

    page = Dashboard(arguments.base_url, arguments.mqtt_port, arguments.output, arguments.headed)
    try:
        figures = story(page)
    except Failure as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        page.driver.quit()

    sizes = gzipped_sizes()
    print("\ndashboard files        bytes   gzipped")
    for name, (raw, packed) in sizes.items():
        print(f"  {name:<30} {raw:>7} {packed:>8}")
    total_raw = sum(raw for raw, _ in sizes.values())
    total = sum(packed for _, packed in sizes.values())
    print(f"  {'total':<30} {total_raw:>7} {total:>8}  ({total / 1024:.1f} KiB gzipped; target 200 KB)")
    print(f"\nsensor page, 28 days of hourly data ({DAYS * 24} measurements, 2 attributes, "
          f"{figures['charts']} charts, {figures['mode']} points"
          f"{', interval ' + figures['interval'] + ' s' if figures['interval'] else ''}): "
          f"rendered in {figures['rendered']:.0f} ms (Performance API, target 1000 ms)")
    print(f"screenshots in {arguments.output}")
    print("browser tests passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
