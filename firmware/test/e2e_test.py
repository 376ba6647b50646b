"""The sketch end to end, simulated: the real compiled .elf in simavr (sim/uno_sim), its
SoftwareSerial on a pty to a fake SIM7000 (sim/fake_sim7000.py) that speaks real MQTT to a
real mosquitto, and the real dtwin bridge forwarding to a local API Gateway stand-in.

    python e2e_test.py --dtwin PATH/TO/dtwin --uno-sim PATH/TO/uno_sim --build-dir DIR

Everything runs on 127.0.0.1 on free ports and stops within its own time bounds. Prints
"firmware e2e: N passed, N failed"; exits 1 when anything failed.
"""

import argparse
import base64
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tty
import urllib.parse
import urllib.request
import uuid

import paho.mqtt.client as mqtt
from twilio.request_validator import RequestValidator

HERE = os.path.dirname(os.path.abspath(__file__))
FIRMWARE = os.path.dirname(HERE)
ROOT = os.path.dirname(FIRMWARE)
sys.path.insert(0, os.path.join(FIRMWARE, "sim"))
from fake_sim7000 import FakeSim7000  # noqa: E402

A0_MILLIVOLTS = 1500
# The ATmega's ADC gives Vin * 1024 / Vref (307.2 here); simavr scales by 1023 (306.9). Either
# whole step is the photoresistor's value.
EXPECTED_ADC = {A0_MILLIVOLTS * 1023 // 5000, A0_MILLIVOLTS * 1024 // 5000}

# The Twilio account the twin phase's SMS come from (a test's own; nothing leaves 127.0.0.1).
ACCOUNT_SID = "AC" + "e2" * 16
AUTH_TOKEN = "e2e-auth-token"
PUBLIC_URL = "https://bridge.example.com"
PHONE = "+12065550100"
API_TOKEN = "e2e-api-token"

results = {"passed": 0, "failed": 0}
# The least stack the simulation may leave free below its deepest point (bytes). The UNO has
# 2,048 bytes of RAM; build.sh keeps static data at 70% or less of it.
MIN_STACK_HEADROOM = 200


def check(condition, what, detail=""):
    results["passed" if condition else "failed"] += 1
    print("  %s  %s%s" % ("ok  " if condition else "FAIL", what, "" if condition or not detail else ": " + str(detail)[-600:]))
    return condition


def wait_until(condition, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    def __init__(self, directory):
        self.port = free_port()
        config = os.path.join(directory, "mosquitto.conf")
        with open(config, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % self.port)
            if os.geteuid() == 0:
                f.write("user root\n")  # keep root: the temporary folder stays ours
        self.process = subprocess.Popen(["mosquitto", "-c", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(lambda: listening(self.port), 10):
            raise RuntimeError("mosquitto did not start on port %d" % self.port)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


class APIGateway:
    """The API Gateway URL the bridge's apigw upstream calls: records each request's query."""

    def __init__(self):
        self.events = []
        events = self.events

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                events.append(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query)))
                body = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


class Watcher:
    """Everything on dtwin/#, retained messages included."""

    def __init__(self, port, username=None, password=None):
        self.messages = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-watcher")
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload.decode(errors="replace"), m.retain))
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("dtwin/#", qos=1)
        self.client.loop_start()

    def has(self, topic, payload=None):
        return any(t == topic and (payload is None or p == payload) for t, p, _ in self.messages)

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()


class SimulatedUno:
    """uno_sim running the .elf, wired to a fake SIM7000 through a pty of our own."""

    def __init__(self, uno_sim, elf, directory, old_firmware=False, seconds=90, name=None):
        master, slave = os.openpty()
        tty.setraw(slave)
        self.master, self.slave = master, slave
        self.elf = elf
        self.console_path = os.path.join(directory, "console-%s.txt" % (name or ("old" if old_firmware else "uno1")))
        self.pins = []
        self.lowest_sp = None
        self.modem_log = []
        self.modem = FakeSim7000(master, old_firmware=old_firmware, log=self.modem_log.append).start()
        self.process = subprocess.Popen(
            [uno_sim, elf, "--modem", os.ttyname(slave), "--console", self.console_path, "--a0", str(A0_MILLIVOLTS),
             "--seconds", str(seconds)],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read_pins, daemon=True).start()

    def _read_pins(self):
        for line in self.process.stdout:
            if line.startswith("D"):
                self.pins.append(line.strip())
            elif line.startswith("stack lowest SP "):
                self.lowest_sp = int(line.split()[-1], 16)

    def stack_headroom(self):
        """Bytes between the static data's end and the deepest the stack went, or None."""
        if self.lowest_sp is None:
            return None
        text, data, bss = (int(n) for n in subprocess.run(["avr-size", self.elf], capture_output=True, text=True,
                                                           check=True).stdout.splitlines()[-1].split()[:3])
        return self.lowest_sp - (0x100 + data + bss)

    def led(self):
        states = [p for p in self.pins if p.startswith("D10 ")]
        return states[-1] if states else None

    @property
    def console(self):
        try:
            with open(self.console_path) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.modem.stop()
        os.close(self.master)
        os.close(self.slave)


def post_sms(port, text):
    """An inbound SMS webhook as Twilio sends it, signed by the twilio library itself."""
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": ACCOUNT_SID, "From": PHONE, "To": "+15017122661",
              "Body": text, "NumMedia": "0"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + "/twilio/sms", params)
    request = urllib.request.Request("http://127.0.0.1:%d/twilio/sms" % port, data=urllib.parse.urlencode(params).encode(),
                                     headers={"X-Twilio-Signature": signature,
                                              "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status, response.read().decode()


def twin(port):
    """GET /api/devices/uno1/state, or {} while the bridge does not answer."""
    request = urllib.request.Request("http://127.0.0.1:%d/api/devices/uno1/state" % port,
                                     headers={"Authorization": "Bearer " + API_TOKEN})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return {}


def stop_and_measure_stack(uno, cleanups, build_name):
    """Stops a simulated UNO and checks (and reports) the stack headroom it had."""
    uno.stop()
    cleanups.remove(uno.stop)
    headroom = uno.stack_headroom()
    check(headroom is not None and headroom >= MIN_STACK_HEADROOM,
          "stack headroom in simavr, %s build: %s bytes free below the deepest stack (lowest SP %s)"
          % (build_name, headroom, hex(uno.lowest_sp or 0)))


def build(build_dir, broker_port=None, secrets=None):
    """The sketch for the simulation: the plain build for a broker on 127.0.0.1:broker_port, or
    the TLS build from a secrets header as add-device.sh --arduino writes it. Prints the sizes."""
    flags = ["-DDTWIN_NO_SECRETS_FILE", "-DDTWIN_PERIOD_MS=2000UL", "-DDTWIN_CHECK_MS=3000UL"]
    if secrets:
        flags += ["-include", secrets]
    else:
        flags += ['-DDTWIN_BROKER_HOST="127.0.0.1"', "-DDTWIN_BROKER_PORT=%d" % broker_port]
    run = subprocess.run([os.path.join(FIRMWARE, "build.sh"), build_dir] + flags, capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        raise RuntimeError("firmware/build.sh failed: " + run.stdout + run.stderr)
    for line in run.stdout.splitlines()[:-1]:
        print("  (%s build) %s" % ("TLS" if secrets else "plain", line))
    return run.stdout.strip().splitlines()[-1]


class GeneratedBroker:
    """A production broker as broker-config/setup.sh makes it (TLS for devices, passwords, ACL),
    running on free loopback ports; the host name its certificate carries is localhost."""

    def __init__(self):
        # Not under a private temporary folder: as root, mosquitto reads its files as `mosquitto`.
        self.directory = "/tmp/dtwin-fw-broker-" + uuid.uuid4().hex
        self.mqtt_port, self.mqtts_port = free_port(), free_port()
        environment = dict(os.environ, MQTT_PORT=str(self.mqtt_port), MQTTS_PORT=str(self.mqtts_port))
        run = subprocess.run([os.path.join(ROOT, "broker-config", "setup.sh"), "--host", "localhost", self.directory],
                             env=environment, capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            raise RuntimeError("setup.sh failed: " + run.stderr)
        self.log = open(os.path.join(self.directory, "mosquitto.log"), "w")
        self.process = subprocess.Popen(["mosquitto", "-c", os.path.join(self.directory, "mosquitto.conf")],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_until(lambda: listening(self.mqtt_port) and listening(self.mqtts_port), 10):
            raise RuntimeError("the generated broker did not open its ports")

    def url(self, file):
        """DTWIN_BROKER from bridge.env or operator.env."""
        with open(os.path.join(self.directory, file)) as f:
            return next(line.split("=", 1)[1].strip() for line in f if line.startswith("DTWIN_BROKER="))

    def add_device(self, name, header):
        run = subprocess.run([os.path.join(ROOT, "broker-config", "add-device.sh"), "--arduino-header", header,
                              self.directory, name], capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            raise RuntimeError("add-device.sh failed: " + run.stderr)
        return run.stdout.strip()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def with_other_ca(password, port, directory):
    """The header a device flashed for the wrong broker has: the same device, password, host and
    port, another CA. Written by broker-config's own header writer (lib.sh)."""
    key, ca = os.path.join(directory, "other-ca.key"), os.path.join(directory, "other-ca.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
                    "-subj", "/CN=some other CA", "-addext", "basicConstraints=critical,CA:TRUE",
                    "-keyout", key, "-out", ca], capture_output=True, check=True, timeout=60)
    path = os.path.join(directory, "wrong-ca-secrets.h")
    subprocess.run(["bash", "-c", 'source "$1"; write_arduino_header "$2" uno1 "$3" localhost "$4" "$5"', "write-header",
                    os.path.join(ROOT, "broker-config", "lib.sh"), path, password, str(port), ca],
                   capture_output=True, check=True, timeout=60)
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dtwin", required=True)
    parser.add_argument("--uno-sim", required=True)
    parser.add_argument("--build-dir", required=True)
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="dtwin-firmware-e2e-")
    cleanups = []
    try:
        broker = Mosquitto(directory)
        cleanups.append(broker.stop)
        elf = build(args.build_dir, broker.port)
        gateway = APIGateway()
        cleanups.append(gateway.stop)
        watcher = Watcher(broker.port)
        cleanups.append(watcher.stop)

        environment = {k: v for k, v in os.environ.items() if not k.startswith(("DTWIN_", "TWILIO_"))}
        environment.update({
            "DTWIN_BROKER": "mqtt://127.0.0.1:%d" % broker.port, "DTWIN_CLIENTID": "e2e-bridge",
            "DTWIN_UPSTREAM_MODE": "apigw", "DTWIN_UPSTREAM_URL": "http://127.0.0.1:%d/prod/iot" % gateway.port,
            "DTWIN_STORE_PATH": os.path.join(directory, "twin.sqlite"),
            "DTWIN_SPOOL_PATH": os.path.join(directory, "spool"), "DTWIN_HTTP_PORT": "0",
        })
        bridge_log = open(os.path.join(directory, "bridge.log"), "w")
        bridge = subprocess.Popen([args.dtwin, "bridge"], env=environment, stdout=bridge_log, stderr=subprocess.STDOUT)
        cleanups.append(lambda: (bridge.terminate(), bridge.wait(timeout=15)))
        check(wait_until(lambda: watcher.has("dtwin/bridge/status", "online"), 20), "the bridge is online")

        uno = SimulatedUno(args.uno_sim, elf, directory, seconds=150)
        cleanups.append(uno.stop)
        readings = lambda: [p for t, p, _ in watcher.messages if t == "dtwin/uno1/up" and p.startswith("sim-uno1 data ")]
        check(wait_until(lambda: len(readings()) >= 2, 40), "readings reach dtwin/uno1/up", uno.console)
        reading = (readings() or ["none"])[0]
        check(reading in ["sim-uno1 data %d" % adc for adc in EXPECTED_ADC],
              "a reading is the photoresistor's ADC value (A0 at %d mV)" % A0_MILLIVOLTS, readings())
        check(watcher.has("dtwin/uno1/up", "uno1:awake"), "the boot event uno1:awake")
        check(watcher.has("dtwin/uno1/status", "online"), "the retained status online")
        check(uno.modem.config.get("CLEANSS") == "0" and uno.modem.config.get("CLIENTID") == '"uno1"',
              "a persistent session with the device name as client id", uno.modem.config)
        check(uno.modem.config.get("TOPIC") == '"dtwin/uno1/status"' and uno.modem.config.get("MESSAGE") == '"offline"',
              "the last will is offline on dtwin/uno1/status", uno.modem.config)

        # The bridge forwards them in the cloud contract.
        events = lambda: [e for e in gateway.events if e.get("Topic") == "dtwin/uno1/up"]
        wait_until(lambda: any(base64.b64decode(e.get("Payload", "")) == reading.encode() for e in events()), 15)
        forwarded = [e for e in events() if base64.b64decode(e.get("Payload", "")) == reading.encode()]
        event = forwarded[0] if forwarded else {}
        check(bool(forwarded), "the bridge forwards the reading to the API Gateway URL", events()[:2])
        check(event.get("SimUniqueName") == "uno1" and event.get("PayloadType") == "binary"
              and event.get("Direction") == "from_sim" and event.get("Status") == "received" and event.get("Source") == "mqtt"
              and event.get("MessageId") and event.get("ReceivedAt", "").endswith("Z"),
              "in the cloud contract (SimUniqueName, Payload, PayloadType, Direction, Status, MessageId, ReceivedAt)", event)

        # dtwin send lights D10; ACK turns it off.
        sent = subprocess.run([args.dtwin, "send", "uno1", "LIG", "--broker", "mqtt://127.0.0.1:%d" % broker.port],
                              env=environment, capture_output=True, text=True, timeout=30)
        check(sent.returncode == 0, "dtwin send uno1 LIG", sent.stdout + sent.stderr)
        check(wait_until(lambda: uno.led() == "D10 1", 15), "LIG lights D10", uno.pins)
        check("command LIG: LED on" in uno.console, "the serial console says so")
        subprocess.run([args.dtwin, "send", "uno1", "ACK", "--broker", "mqtt://127.0.0.1:%d" % broker.port],
                       env=environment, capture_output=True, timeout=30)
        check(wait_until(lambda: uno.led() == "D10 0", 15), "ACK turns D10 off", uno.pins)

        # The network drops the MQTT connection: the sketch notices and connects again.
        connects = uno.modem.connects
        uno.modem.drop_connection()
        check(wait_until(lambda: uno.modem.connects > connects, 30), "a dropped connection is noticed and made again",
              uno.console[-600:])
        count = len(readings())
        check(wait_until(lambda: len(readings()) > count, 15), "readings go on after the reconnect")
        states = lambda: [json.loads(p) for t, p, _ in watcher.messages if t == "dtwin/uno1/up" and p.startswith("{")]
        check(len(states()) >= 2 and states()[-1].get("led") is False and states()[-1].get("period") == 2
              and states()[-1].get("value") in EXPECTED_ADC,
              "at start-up, after each reconnect and each change the sketch reports its LED and period", states())

        # The twin, from SMS to LED to reported state: a local-mode bridge (its twin table in
        # SQLite) takes "SET uno1 led on" from a phone on uno1's list; the sketch lights D10
        # and reports it; the twin shows it reported, nothing pending.
        bridge.terminate()
        bridge.wait(timeout=15)
        http_port = free_port()
        environment.update({
            "DTWIN_CLIENTID": "e2e-twin-bridge", "DTWIN_UPSTREAM_MODE": "local", "DTWIN_HTTP_PORT": str(http_port),
            "DTWIN_SPOOL_PATH": os.path.join(directory, "twin-spool"), "DTWIN_HTTP_PUBLICURL": PUBLIC_URL,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "DTWIN_API_TOKEN": API_TOKEN,
            "DTWIN_TWILIO_APIBASE": "http://127.0.0.1:9", "DTWIN_TWILIO_SUPERSIMBASE": "http://127.0.0.1:9",
            "DTWIN_DEVICES": json.dumps({"uno1": {"phones": [PHONE]}}),
        })
        twin_log = open(os.path.join(directory, "twin-bridge.log"), "w")
        twin_bridge = subprocess.Popen([args.dtwin, "bridge"], env=environment, stdout=twin_log, stderr=subprocess.STDOUT)
        cleanups.append(lambda: (twin_bridge.terminate(), twin_bridge.wait(timeout=15)))
        log = lambda: open(os.path.join(directory, "twin-bridge.log")).read()
        check(wait_until(lambda: twin(http_port).get("reported", {}).get("online") is True, 30),
              "the local-mode bridge's twin sees uno1 online", log()[-1500:])
        status, answer = post_sms(http_port, "SET uno1 led on")
        check(status == 200 and "uno1 led set to on" in answer, "SMS SET uno1 led on is taken", answer)
        check(wait_until(lambda: uno.led() == "D10 1", 20), "the desired state lights D10", uno.pins)
        settled = lambda: twin(http_port)
        check(wait_until(lambda: settled().get("reported", {}).get("led") is True and not settled().get("delta")
                         and not settled().get("pending"), 20),
              "the twin shows the LED reported on, no delta, nothing pending", settled())
        check(settled().get("reported", {}).get("firmware") == "dtwin-uno 1.2" and settled().get("reported", {}).get("period") == 2,
              "and the sketch's firmware and period", settled().get("reported"))
        documents = lambda: [json.loads(p) for t, p, _ in watcher.messages if t == "dtwin/uno1/state"]
        check(wait_until(lambda: any(d.get("reported", {}).get("led") is True and not d.get("delta") for d in documents()), 10),
              "dtwin/uno1/state publishes it", documents()[-1:])
        status, answer = post_sms(http_port, "STATUS uno1")
        check(status == 200 and "uno1: " in answer and "Pending" not in answer, "STATUS uno1 shows nothing pending", answer)
        stop_and_measure_stack(uno, cleanups, "plain")

        # The production broker: setup.sh's TLS listener, ACL and passwords. add-device.sh
        # --arduino writes the sketch's secrets header; the sketch uploads the CA to the modem,
        # which connects over real TLS (Python's ssl), checking the broker against that CA.
        produced = GeneratedBroker()
        cleanups.append(produced.stop)
        header = os.path.join(directory, "dtwin_secrets.h")
        password = produced.add_device("uno1", header)
        with open(header) as f:
            provisioned = f.read()
        check(os.stat(header).st_mode & 0o777 == 0o600 and '#define DTWIN_MQTT_PASSWORD "%s"' % password in provisioned
              and "#define DTWIN_TLS 1" in provisioned and '#define DTWIN_BROKER_HOST "localhost"' in provisioned,
              "add-device.sh --arduino-header writes the secrets header, mode 600, with the password it printed")
        tls_elf = build(args.build_dir + "-tls", secrets=header)
        operator = urllib.parse.urlsplit(produced.url("operator.env"))
        tls_watcher = Watcher(produced.mqtt_port, operator.username, operator.password)
        cleanups.append(tls_watcher.stop)
        environment.update({
            "DTWIN_BROKER": produced.url("bridge.env"), "DTWIN_CLIENTID": "e2e-tls-bridge", "DTWIN_UPSTREAM_MODE": "apigw",
            "DTWIN_SPOOL_PATH": os.path.join(directory, "tls-spool"), "DTWIN_STORE_PATH": os.path.join(directory, "tls.sqlite"),
            "DTWIN_HTTP_PORT": "0",
        })
        tls_log = open(os.path.join(directory, "tls-bridge.log"), "w")
        tls_bridge = subprocess.Popen([args.dtwin, "bridge"], env=environment, stdout=tls_log, stderr=subprocess.STDOUT)
        cleanups.append(lambda: (tls_bridge.terminate(), tls_bridge.wait(timeout=15)))
        check(wait_until(lambda: tls_watcher.has("dtwin/bridge/status", "online"), 20),
              "TLS: the bridge is online on the generated broker (bridge.env)")
        secure = SimulatedUno(args.uno_sim, tls_elf, directory, seconds=120, name="tls")
        cleanups.append(secure.stop)
        tls_readings = lambda: [p for t, p, _ in tls_watcher.messages if t == "dtwin/uno1/up" and p.startswith("sim-uno1 data ")]
        check(wait_until(lambda: len(tls_readings()) >= 2, 60), "TLS: readings arrive through the ACL over TLS",
              secure.console[-1500:] + "\n" + "\n".join(secure.modem_log[-10:]))
        with open(os.path.join(produced.directory, "tls", "ca.crt"), "rb") as f:
            check(secure.modem.files.get("ca.crt") == f.read(), "TLS: the CA the modem stored is the broker's tls/ca.crt, byte for byte")
        check(secure.modem.tls and secure.modem.tls_version == "TLSv1.2" and secure.modem.ssl_config.get("sni") == "localhost",
              "TLS: AT+SMSSL=1 with the CA alone, TLS 1.2, SNI localhost",
              (secure.modem.tls, secure.modem.tls_version, secure.modem.ssl_config))
        check("CA dtwin broker CA (localhost) loaded into the modem, TLS 1.2" in secure.console
              and "modem firmware 1351B05SIM7000E" in secure.console, "TLS: the console says so", secure.console[-800:])
        forwarded = lambda: [e for e in gateway.events if e.get("Topic") == "dtwin/uno1/up"
                             and base64.b64decode(e.get("Payload", "")).startswith(b"sim-uno1 data ")]
        before = len(forwarded())
        check(wait_until(lambda: len(forwarded()) > before, 15), "TLS: the bridge forwards the readings")
        sent = subprocess.run([args.dtwin, "send", "uno1", "LIG", "--broker", produced.url("bridge.env")],
                              env=environment, capture_output=True, text=True, timeout=30)
        check(sent.returncode == 0 and wait_until(lambda: secure.led() == "D10 1", 15),
              "TLS: dtwin send uno1 LIG lights D10 through the ACL", sent.stdout + sent.stderr + str(secure.pins))
        stop_and_measure_stack(secure, cleanups, "TLS")

        # The same with another CA in the sketch: the handshake fails, nothing connects, and
        # the console says why.
        wrong_elf = build(args.build_dir + "-wrongca", secrets=with_other_ca(password, produced.mqtts_port, directory))
        wrong = SimulatedUno(args.uno_sim, wrong_elf, directory, seconds=70, name="wrong-ca")
        cleanups.append(wrong.stop)
        check(wait_until(lambda: "does not verify against the CA built in (some other CA)" in wrong.console, 60),
              "wrong CA: the console says the broker does not verify against the CA built in", wrong.console[-1200:])
        check(wrong.modem.connects == 0 and wrong.modem.handshake_errors
              and "certificate verify failed" in wrong.modem.handshake_errors[0],
              "wrong CA: no connection; the modem's handshake failed verification", wrong.modem.handshake_errors[:1])
        wrong.stop()
        cleanups.remove(wrong.stop)

        # Old modem firmware: ERROR to every SM* command. The sketch says so and keeps trying.
        old = SimulatedUno(args.uno_sim, elf, directory, old_firmware=True, seconds=60)
        cleanups.append(old.stop)
        check(wait_until(lambda: "its firmware has no MQTT" in old.console, 40), "old modem firmware is reported", old.console)
        tries = lambda: sum(c.startswith("AT+SMCONF=\"URL\"") for c in old.modem.commands)
        before = tries()
        check(wait_until(lambda: tries() > before, 70), "and retried, the sketch still running", old.modem.commands[-3:])
    except Exception as error:  # a harness failure is a failed test, with its reason
        check(False, "the end-to-end run", repr(error))
    finally:
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception:
                pass
        shutil.rmtree(directory, ignore_errors=True)
    print("firmware e2e: %d passed, %d failed" % (results["passed"], results["failed"]))
    return 0 if results["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
