"""A fake SIM7000 on a pty: it answers the sketch's AT commands the way SIMCom's MQTT(S)
application note describes, and turns the SM* commands into real MQTT (paho) on the broker
the sketch configures with AT+SMCONF="URL" (loopback only: anything else is refused).

Used by firmware/test/e2e_test.py; run alone it makes a pty and prints its path:

    python fake_sim7000.py [--old-firmware]
"""

import os
import re
import threading
import time
import tty

import paho.mqtt.client as mqtt

LOOPBACK = {"127.0.0.1", "localhost"}


class FakeSim7000:
    def __init__(self, fd, old_firmware=False, log=None):
        self.fd = fd
        self.old_firmware = old_firmware
        self.log = log or (lambda line: None)
        self.echo = True
        self.config = {}
        self.commands = []  # every command line received
        self.client = None
        self.connects = 0
        self._write_lock = threading.Lock()
        self._buffer = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    # --- lifecycle ---

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self._disconnect()

    def drop_connection(self):
        """The network loses the MQTT connection (the sketch must notice with AT+SMSTATE?)."""
        self._disconnect()

    # --- the serial line ---

    def _send(self, data):
        with self._write_lock:
            os.write(self.fd, data)

    def _answer(self, *lines):
        self._send(b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines))

    def _read(self, count=None, timeout=5.0):
        """Bytes from the sketch: up to a CR (a command), or exactly `count` (SMPUB data)."""
        deadline = time.monotonic() + timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            if count is not None and len(self._buffer) >= count:
                data, self._buffer = self._buffer[:count], self._buffer[count:]
                return data
            if count is None and b"\r" in self._buffer:
                line, self._buffer = self._buffer.split(b"\r", 1)
                return line
            try:
                chunk = os.read(self.fd, 1024)
            except BlockingIOError:
                chunk = b""
            except OSError:
                return None
            if chunk:
                self._buffer += chunk
            else:
                time.sleep(0.002)
        return None

    def _run(self):
        os.set_blocking(self.fd, False)
        while not self._stop.is_set():
            line = self._read(timeout=0.2)
            if line is None:
                continue
            line = line.strip(b"\n").strip()
            if not line:
                continue
            command = line.decode(errors="replace")
            self.commands.append(command)
            self.log("modem < " + command)
            if self.echo:
                self._send(line + b"\r")
            self._handle(command)

    # --- the commands ---

    def _handle(self, command):
        if command == "AT":
            return self._answer("OK")
        if command == "ATE0":
            self.echo = False
            return self._answer("OK")
        if command.startswith("AT+IPR="):
            return self._answer("OK")
        if command.startswith("AT+CNACT=1,"):
            return self._answer("OK", "+APP PDP: ACTIVE")
        if command == "AT+CNACT?":
            return self._answer('+CNACT: 1,"10.64.0.7"', "OK")
        if command.startswith("AT+SM") and self.old_firmware:
            return self._answer("ERROR")
        match = re.fullmatch(r'AT\+SMCONF="(\w+)",(.*)', command)
        if match:
            self.config[match.group(1)] = match.group(2)
            return self._answer("OK")
        if command == "AT+SMCONN":
            return self._answer("OK" if self._connect() else "ERROR")
        if command == "AT+SMSTATE?":
            connected = self.client is not None and self.client.is_connected()
            return self._answer("+SMSTATE: %d" % connected, "OK")
        match = re.fullmatch(r'AT\+SMPUB="([^"]+)",(\d+),(\d),(\d)', command)
        if match:
            return self._publish(match.group(1), int(match.group(2)), int(match.group(3)), match.group(4) == "1")
        match = re.fullmatch(r'AT\+SMSUB="([^"]+)",(\d)', command)
        if match:
            if self.client is None or not self.client.is_connected():
                return self._answer("ERROR")
            result, _ = self.client.subscribe(match.group(1), int(match.group(2)))
            return self._answer("OK" if result == mqtt.MQTT_ERR_SUCCESS else "ERROR")
        if command == "AT+SMDISC":
            self._disconnect()
            return self._answer("OK")
        return self._answer("ERROR")

    def _text(self, key, default=""):
        value = self.config.get(key, default)
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value

    def _connect(self):
        self._disconnect()
        url = self.config.get("URL", "")
        match = re.fullmatch(r'"([^"]+)",?"?(\d+)"?', url)
        if not match or match.group(1) not in LOOPBACK:
            self.log("modem: refusing to connect to %r (loopback only)" % url)
            return False
        host, port = match.group(1), int(match.group(2))
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self._text("CLIENTID"),
            clean_session=self._text("CLEANSS", "1") == "1",
        )
        if "USERNAME" in self.config:
            client.username_pw_set(self._text("USERNAME"), self._text("PASSWORD") or None)
        if "TOPIC" in self.config:
            client.will_set(
                self._text("TOPIC"), self._text("MESSAGE"), qos=int(self._text("QOS", "0")), retain=self._text("RETAIN") == "1"
            )
        keepalive = int(self._text("KEEPTIME", "60"))
        connected = threading.Event()
        client.on_connect = lambda c, u, flags, reason, props: reason == 0 and connected.set()
        client.on_message = self._on_message
        try:
            client.connect(host, port, keepalive=keepalive)
        except OSError as error:
            self.log("modem: MQTT connect failed: %s" % error)
            return False
        client.loop_start()
        if not connected.wait(5):
            client.loop_stop()
            return False
        self.client = client
        self.connects += 1
        return True

    def _disconnect(self):
        client, self.client = self.client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def _publish(self, topic, length, qos, retain):
        self._send(b"\r\n> ")
        payload = self._read(count=length)
        if payload is None or self.client is None or not self.client.is_connected():
            return self._answer("ERROR")
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        try:
            info.wait_for_publish(timeout=5)
        except RuntimeError:
            return self._answer("ERROR")
        self.log("modem > MQTT %s %r" % (topic, payload))
        return self._answer("OK" if info.is_published() else "ERROR")

    def _on_message(self, client, userdata, message):
        # As the SIM7000 reports it: +SMSUB: "topic","message" (no escaping).
        self._send(b'\r\n+SMSUB: "' + message.topic.encode() + b'","' + message.payload + b'"\r\n')


if __name__ == "__main__":
    import sys

    master, slave = os.openpty()
    tty.setraw(slave)  # raw from the start: the sketch's bytes are not a terminal's
    print("fake SIM7000 on", os.ttyname(slave), flush=True)
    modem = FakeSim7000(master, old_firmware="--old-firmware" in sys.argv, log=print).start()
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        modem.stop()
