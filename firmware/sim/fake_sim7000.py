"""A fake SIM7000 on a pty: it answers the sketch's AT commands the way SIMCom's MQTT(S)
application note describes, and turns the SM* commands into real MQTT (paho) on the broker
the sketch configures with AT+SMCONF="URL" (loopback only: anything else is refused).

TLS as the modem does it: AT+CFSINIT / AT+CFSWFILE store the bytes the sketch sends after
DOWNLOAD, AT+CSSLCFG="convert",2 takes a CA from them (an invalid one is ERROR),
"sslversion" 3 pins TLS 1.2, "sni" names the server, and AT+SMSSL=1 makes AT+SMCONN a real
TLS connection (Python's ssl) that verifies the broker against that CA alone, its host name
included. Like the modem, it checks certificate dates against its own clock, which is set
only by network time (AT+CLTS=1 before attaching) or AT+CNTP: until then AT+SMCONN over TLS
fails. A failed handshake answers ERROR, as the modem does; the reason goes to the log.

Used by firmware/test/e2e_test.py; run alone it makes a pty and prints its path:

    python fake_sim7000.py [--old-firmware]
"""

import datetime
import os
import re
import ssl
import threading
import time
import tty

import paho.mqtt.client as mqtt

LOOPBACK = {"127.0.0.1", "localhost"}


class FakeSim7000:
    def __init__(self, fd, old_firmware=False, log=None, revision="1351B05SIM7000E"):
        self.fd = fd
        self.old_firmware = old_firmware
        self.revision = revision
        self.network_time = False  # AT+CLTS=1
        self.clock_set = False
        self.file_buffer = False  # AT+CFSINIT .. AT+CFSTERM
        self.files = {}  # what AT+CFSWFILE wrote, by name
        self.ssl_config = {}  # AT+CSSLCFG "sslversion" and "sni"
        self.ca = None  # the CA text AT+CSSLCFG="convert",2 took
        self.tls = False  # AT+SMSSL=1
        self.tls_version = None  # the version of the last TLS connection
        self.handshake_errors = []
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
            if self.network_time:
                self.clock_set = True
                now = datetime.datetime.now(datetime.timezone.utc)
                return self._answer("OK", "+APP PDP: ACTIVE", now.strftime('*PSUTTZ: %y/%m/%d,%H:%M:%S","+00",0'))
            return self._answer("OK", "+APP PDP: ACTIVE")
        if command == "AT+CLTS=1":
            self.network_time = True
            return self._answer("OK")
        if command == "AT+GMR":
            return self._answer("Revision:" + self.revision, "OK")
        if command == "AT+CCLK?":
            now = datetime.datetime.now(datetime.timezone.utc)
            return self._answer(now.strftime('+CCLK: "%y/%m/%d,%H:%M:%S+00"') if self.clock_set else '+CCLK: "80/01/06,00:00:12+00"', "OK")
        if command.startswith("AT+CNTP="):
            return self._answer("OK")
        if command == "AT+CNTP":
            self.clock_set = True
            return self._answer("OK", "+CNTP: 1")
        if command in ("AT+CFSINIT", "AT+CFSTERM"):
            self.file_buffer = command == "AT+CFSINIT"
            return self._answer("OK")
        match = re.fullmatch(r'AT\+CFSWFILE=(\d),"([^"]{1,50})",([01]),(\d+),(\d+)', command)
        if match:
            return self._write_file(match.group(2), int(match.group(4)), int(match.group(5)))
        match = re.fullmatch(r'AT\+CSSLCFG="(\w+)",(.*)', command)
        if match:
            return self._ssl_configure(match.group(1), match.group(2))
        if command == "AT+CNACT?":
            return self._answer('+CNACT: 1,"10.64.0.7"', "OK")
        if command.startswith("AT+SM") and self.old_firmware:
            return self._answer("ERROR")
        match = re.fullmatch(r'AT\+SMCONF="(\w+)",(.*)', command)
        if match:
            self.config[match.group(1)] = match.group(2)
            return self._answer("OK")
        if command == "AT+SMSSL=?":
            return self._answer("+SMSSL: (0-6),20,20", "OK")
        match = re.fullmatch(r'AT\+SMSSL=(\d),"([^"]*)","([^"]*)"', command)
        if match:
            self.tls = match.group(1) != "0" and self.ca is not None
            return self._answer("OK" if match.group(1) == "0" or self.tls else "ERROR")
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

    def _write_file(self, name, size, input_ms):
        if not self.file_buffer or not 1 <= size <= 10240 or not 100 <= input_ms <= 10000:
            return self._answer("ERROR")
        self._answer("DOWNLOAD")
        data = self._read(count=size, timeout=input_ms / 1000)
        if data is None:
            self.log("modem: AT+CFSWFILE: %s did not arrive within %d ms" % (name, input_ms))
            return self._answer("ERROR")
        self.files[name] = data
        self.log("modem: wrote %s (%d bytes)" % (name, size))
        return self._answer("OK")

    def _ssl_configure(self, key, arguments):
        if key in ("sslversion", "sni"):
            match = re.fullmatch(r'(\d),"?([^"]*)"?', arguments)
            if not match:
                return self._answer("ERROR")
            self.ssl_config[key] = match.group(2)
            return self._answer("OK")
        match = re.fullmatch(r'2,"([^"]+)"', arguments)
        if key != "convert" or not match or match.group(1) not in self.files:
            return self._answer("ERROR")
        text = self.files[match.group(1)].decode("ascii", errors="replace")
        try:
            ssl.create_default_context(cadata=text)
        except (ssl.SSLError, ValueError) as error:
            self.log("modem: %s is not a CA certificate: %s" % (match.group(1), error))
            return self._answer("ERROR")
        self.ca = text
        return self._answer("OK")

    def _tls_context(self):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host name
        context.load_verify_locations(cadata=self.ca)
        if self.ssl_config.get("sslversion") == "3":
            context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
        return context

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
        if self.tls:
            if not self.clock_set:
                self.log("modem: the clock is not set: the broker's certificate dates cannot be checked")
                return False
            sni = self.ssl_config.get("sni", host)
            if sni != host:
                self.log("modem: SNI %r differs from the URL's host %r" % (sni, host))
                return False
            client.tls_set_context(self._tls_context())
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
        except ssl.SSLError as error:
            self.handshake_errors.append(str(error))
            self.log("modem: TLS handshake failed: %s" % error)
            return False
        except OSError as error:
            self.log("modem: MQTT connect failed: %s" % error)
            return False
        client.loop_start()
        if not connected.wait(5):
            client.loop_stop()
            return False
        self.client = client
        self.connects += 1
        socket = client.socket()
        self.tls_version = socket.version() if isinstance(socket, ssl.SSLSocket) else None
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
