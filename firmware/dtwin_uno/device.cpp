#include "device.h"
#include <stdlib.h>
#include <string.h>

// Long enough for the SIM7000's own MQTT connect over a slow cellular link: a TLS handshake
// has taken 26 s on EGPRS.
static const unsigned long kConnectTimeoutMs = 65000UL;
// AT+CFSWFILE: how long the modem waits for the file (its maximum), and a margin for the OK.
static const unsigned long kFileInputMs = 10000UL;
static const unsigned long kCommandTimeoutMs = 2000UL;
static const unsigned long kPublishTimeoutMs = 10000UL;
// What the state report says the device runs: the twin's reported "firmware".
#define DTWIN_FIRMWARE "dtwin-uno 1.2"

#if DTWIN_TLS
// The broker's CA (PEM), streamed from flash to the modem's file system: it never sits in RAM.
static const char kBrokerCa[] PROGMEM = DTWIN_BROKER_CA_PEM;
#endif

Device::Device(AtModem& modem, Print& console, BaudSetter setModemBaud)
    : modem_(modem), console_(console), setModemBaud_(setModemBaud) {}

void Device::begin() {
    pinMode(PIN_LED, OUTPUT);
    digitalWrite(PIN_LED, LOW);
    pinMode(PIN_MODEM_POWER, OUTPUT);
    digitalWrite(PIN_MODEM_POWER, LOW);
    modem_.onUnsolicited(unsolicited, this);
    say().print(F("starting: broker "));
    console_.print(F(DTWIN_BROKER_HOST));
    console_.print(':');
    console_.print(DTWIN_BROKER_PORT);
    console_.print(DTWIN_TLS ? F(" (TLS, CA " DTWIN_BROKER_CA_NAME ")") : F(" (plain MQTT)"));
    console_.print(F(", APN "));
    console_.print(F(DTWIN_APN));
    console_.print(F(", a reading every "));
    console_.print(periodMs_ / 1000);
    console_.println(F(" s"));
    enter(POWER_UP);
}

void Device::loop() {
    modem_.poll();
    if (paused_ && static_cast<long>(millis() - resumeAt_) < 0) return;
    paused_ = false;
    switch (state_) {
    case POWER_UP: powerUp(); break;
    case MODEM_SETUP: setUpModem(); break;
    case NETWORK: attach(); break;
#if DTWIN_TLS
    case CLOCK: checkClock(); break;
    case TLS_SETUP: setUpTls(); break;
#else
    case CLOCK:
    case TLS_SETUP: break;  // not in a plain build
#endif
    case MQTT_SETUP: configureMqtt(); break;
    case MQTT_CONNECT: connectMqtt(); break;
    case ONLINE: stayOnline(); break;
    }
}

// --- the states -------------------------------------------------------------------------

void Device::powerUp() {
    if (modem_.command(F(""), 1000) == AtModem::OK) {
        say().println(F("modem answers"));
        enter(MODEM_SETUP);
        return;
    }
    attempts_++;
    if (attempts_ == 2) {
        // A new SIM7000 talks at 115200 baud, too fast for SoftwareSerial: ask it for 19200.
        setModemBaud_(115200);
        modem_.command(F("+IPR=19200"), 500);
        setModemBaud_(MODEM_BAUD);
        if (modem_.command(F(""), 1000) == AtModem::OK) {
            say().println(F("modem was at 115200 baud; it is at 19200 now"));
            enter(MODEM_SETUP);
            return;
        }
    }
    if (attempts_ >= 3) {
        say().println(F("modem does not answer: pressing its power key (D12)"));
        digitalWrite(PIN_MODEM_POWER, HIGH);
        delay(1000);
        digitalWrite(PIN_MODEM_POWER, LOW);
        attempts_ = 0;
        pause(8000);  // the modem's boot
        return;
    }
    pause(1000);
}

void Device::setUpModem() {
    if (modem_.command(F("E0"), kCommandTimeoutMs) != AtModem::OK) {
        retryLater(POWER_UP, F("the modem refused ATE0"));
        return;
    }
#if DTWIN_TLS
    caLoaded_ = false;  // a modem that was off has lost its SSL settings
    // Network time from now on (the modem checks certificate dates), and which firmware it runs.
    modem_.command(F("+CLTS=1"), kCommandTimeoutMs);
    readRevision();
#endif
    enter(NETWORK);
}

void Device::attach() {
    if (modem_.command(F("+CNACT?"), kCommandTimeoutMs, F("+CNACT:")) == AtModem::OK &&
        strncmp(modem_.captured(), "+CNACT: 1", 9) == 0) {
        say().println(F("network attached"));
        enter(DTWIN_TLS ? CLOCK : MQTT_SETUP);
        return;
    }
    if (attempts_ % 10 == 0) {
        modem_.begin().print(F("+CNACT=1,\"" DTWIN_APN "\""));
        modem_.end(10000);
    }
    attempts_++;
    if (attempts_ % 10 == 0) {
        say().print(F("no network yet (APN " DTWIN_APN "), still trying: "));
        console_.println(modem_.captured()[0] ? modem_.captured() : modem_.lastResult());
    }
    pause(2000);
}

#if DTWIN_TLS
// TLS needs a clock: the modem checks the broker certificate's dates. A modem that has not
// had network time says a year such as 80 (1980) in AT+CCLK?; NTP is asked then. Without a
// clock the sketch waits: it never connects unchecked.
void Device::checkClock() {
    if (modem_.command(F("+CCLK?"), kCommandTimeoutMs, F("+CCLK:")) == AtModem::OK) {
        // +CCLK: "yy/MM/dd,hh:mm:ss+zz"
        const char* time = strchr(modem_.captured(), '"');
        const int year = time && time[1] >= '0' && time[1] <= '9' && time[2] >= '0' && time[2] <= '9'
                             ? (time[1] - '0') * 10 + (time[2] - '0')
                             : -1;
        if (year >= 24 && year < 80) {
            enter(caLoaded_ ? MQTT_SETUP : TLS_SETUP);
            return;
        }
    }
    // Said once NTP has had a first chance, then every tenth try.
    if (attempts_ % 10 == 1) {
        say().print(F("the modem's clock is not set ("));
        console_.print(modem_.captured()[0] ? modem_.captured() : modem_.lastResult());
        console_.println(F("): the broker's certificate cannot be checked without it; waiting for network time "
                           "(AT+CLTS=1) or NTP from " DTWIN_NTP_SERVER));
    }
    if (attempts_++ % 5 == 0) {
        modem_.command(F("+CNTP=\"" DTWIN_NTP_SERVER "\",0"), kCommandTimeoutMs);
        modem_.command(F("+CNTP"), kCommandTimeoutMs);  // +CNTP: 1 follows when the time is set
    }
    pause(3000);
}

// The broker's CA into the modem (AT+CFSWFILE), TLS 1.2, SNI, and the CA converted for the
// modem's TLS stack. Once per modem power-up.
void Device::setUpTls() {
    if (!uploadCa()) {
        retryLater(TLS_SETUP, F("the CA did not reach the modem"));
        return;
    }
    bool ok = modem_.command(F("+CSSLCFG=\"sslversion\",0,3"), kCommandTimeoutMs) == AtModem::OK;
    if (ok && strspn(DTWIN_BROKER_HOST, "0123456789.") != strlen(DTWIN_BROKER_HOST)) {
        // SNI carries a host name, never an address (RFC 6066).
        ok = modem_.command(F("+CSSLCFG=\"sni\",0,\"" DTWIN_BROKER_HOST "\""), kCommandTimeoutMs) == AtModem::OK;
    }
    if (!ok) {
        say().print(F("the modem refused the TLS settings (AT+CSSLCFG): "));
        sayModemAnswer();
        retryLater(TLS_SETUP, F("no TLS settings"));
        return;
    }
    if (modem_.command(F("+CSSLCFG=\"convert\",2,\"ca.crt\""), kCommandTimeoutMs) != AtModem::OK) {
        say().print(F("the modem could not read the CA (AT+CSSLCFG convert answered "));
        console_.print(modem_.lastResult());
        console_.println(F("): DTWIN_BROKER_CA_PEM must be the broker's tls/ca.crt, as add-device.sh --arduino writes it"));
        retryLater(TLS_SETUP, F("the CA was not taken"));
        return;
    }
    caLoaded_ = true;
    say().println(F("CA " DTWIN_BROKER_CA_NAME " loaded into the modem, TLS 1.2"));
    enter(MQTT_SETUP);
}

bool Device::uploadCa() {
    if (modem_.command(F("+CFSINIT"), kCommandTimeoutMs) != AtModem::OK) {
        say().print(F("AT+CFSINIT failed: "));
        sayModemAnswer();
        return false;
    }
    const size_t size = sizeof(kBrokerCa) - 1;
    Print& out = modem_.begin();
    out.print(F("+CFSWFILE=3,\"ca.crt\",0,"));
    out.print(static_cast<unsigned long>(size));
    out.print(',');
    out.print(kFileInputMs);
    bool ok = false;
    if (modem_.endAwaitingLine(kCommandTimeoutMs, F("DOWNLOAD")) != AtModem::PROMPT) {
        say().print(F("AT+CFSWFILE: no DOWNLOAD from the modem, it said "));
        sayModemAnswer();
    } else if (modem_.sendFlashData(kBrokerCa, size, kFileInputMs + kCommandTimeoutMs) != AtModem::OK) {
        say().print(F("the CA upload failed: "));
        sayModemAnswer();
    } else {
        ok = true;
    }
    modem_.command(F("+CFSTERM"), kCommandTimeoutMs);  // frees the modem's file buffer, whatever happened
    return ok;
}

void Device::readRevision() {
    if (revision_[0] || modem_.command(F("+GMR"), kCommandTimeoutMs, F("Revision:")) != AtModem::OK) return;
    strncpy(revision_, modem_.captured() + 9, sizeof revision_ - 1);
    revision_[sizeof revision_ - 1] = '\0';
    say().print(F("modem firmware "));
    console_.println(revision_);
}

// AT+SMSSL=1 with the CA alone (no client certificate): TLS on, the broker checked.
bool Device::selectTls() {
    if (modem_.command(F("+SMSSL=1,\"ca.crt\",\"\""), kCommandTimeoutMs) == AtModem::OK) {
        sslRefusals_ = 0;
        return true;
    }
    if (sslRefusals_ < 255) sslRefusals_++;
    if (modemLacksTls()) {
        // What the firmware offers, for the report.
        modem_.command(F("+SMSSL=?"), kCommandTimeoutMs, F("+SMSSL:"));
        say().print(F("the modem refuses MQTT over TLS with a CA alone (AT+SMSSL=1,\"ca.crt\",\"\" answered ERROR; "
                      "AT+SMSSL=? says "));
        console_.print(modem_.captured()[0] ? modem_.captured() : modem_.lastResult());
        console_.print(')');
        sayFirmware();
        console_.println(F(". Some SIM7000 firmware revisions cannot do it: update the modem's firmware "
                           "(see firmware/README.md). Still trying; never without TLS."));
    }
    return false;
}
#endif  // DTWIN_TLS

void Device::configureMqtt() {
    // The first SMCONF tells whether this modem has MQTT at all: old SIM7000 firmware answers
    // ERROR to every SM* command.
    if (!configure(F("URL"), DTWIN_BROKER_HOST, DTWIN_BROKER_PORT)) {
        if (smRefusals_ < 255) smRefusals_++;
        if (modemLacksMqtt()) {
            say().println(F("the modem answers ERROR to every MQTT (AT+SM...) command: its firmware has no MQTT. "
                            "Update the SIM7000 firmware (see firmware/README.md); still trying."));
            retryLater(MQTT_SETUP, F("no MQTT in the modem"));
        } else {
            retryLater(NETWORK, F("the modem refused AT+SMCONF"));
        }
        return;
    }
    smRefusals_ = 0;
    const bool credentials = sizeof(DTWIN_MQTT_PASSWORD) > 1;
    bool ok = configure(F("CLIENTID"), DTWIN_DEVICE_NAME, -1) && configure(F("KEEPTIME"), nullptr, DTWIN_KEEPALIVE_S) &&
              configure(F("CLEANSS"), nullptr, 0) && configure(F("QOS"), nullptr, 1) &&
              (!credentials || (configure(F("USERNAME"), DTWIN_DEVICE_NAME, -1) && configure(F("PASSWORD"), DTWIN_MQTT_PASSWORD, -1))) &&
              configure(F("TOPIC"), DTWIN_TOPIC_PREFIX "/" DTWIN_DEVICE_NAME "/status", -1) &&
              configure(F("MESSAGE"), "offline", -1) && configure(F("RETAIN"), nullptr, 1);
    if (!ok) {
        retryLater(NETWORK, F("the modem refused an MQTT setting"));
        return;
    }
#if DTWIN_TLS
    if (!selectTls()) {
        retryLater(NETWORK, F("the modem refused AT+SMSSL"));
        return;
    }
#endif
    enter(MQTT_CONNECT);
}

void Device::connectMqtt() {
    if (modem_.command(F("+SMCONN"), kConnectTimeoutMs) != AtModem::OK) {
        say().print(F("MQTT connection to " DTWIN_BROKER_HOST " refused or failed: "));
        sayModemAnswer();
#if DTWIN_TLS
        if (connectFailures_ < 255 && ++connectFailures_ % Device::kRefusalsBeforeVerdict == 0) {
            // The modem says only ERROR; what the sketch has checked leaves these.
            say().print(F("TLS connections keep failing with the clock set and the CA loaded: the broker's certificate "
                          "does not verify against the CA built in (" DTWIN_BROKER_CA_NAME
                          ") or does not carry the name " DTWIN_BROKER_HOST ", or the broker refuses the password, "
                          "or it cannot be reached"));
            sayFirmware();
            console_.println();
        }
#endif
        retryLater(NETWORK, F("MQTT not connected"));
        return;
    }
#if DTWIN_TLS
    connectFailures_ = 0;
#endif
    if (!publish(F("/status"), "online", true) || !publish(F("/up"), DTWIN_DEVICE_NAME ":awake", false) || !subscribe()) {
        retryLater(MQTT_CONNECT, F("the first publish or the subscription failed"));
        return;
    }
    say().print(F("online: a reading every "));
    console_.print(periodMs_ / 1000);
    console_.println(F(" s on " DTWIN_TOPIC_PREFIX "/" DTWIN_DEVICE_NAME "/up"));
    backoffMs_ = 2000;
    checkFailures_ = 0;
    lastCheckAt_ = millis();
    stateNow_ = true;  // the first reading at once, with the LED and period: the twin's reported state
    enter(ONLINE);
}

void Device::stayOnline() {
    const unsigned long now = millis();
    if (stateNow_) {
        // A reading too: it takes the place of one that is due.
        stateNow_ = false;
        readNow_ = false;
        lastReadingAt_ = now;
        publishState();
        if (state_ != ONLINE) return;
    } else if (readNow_ || now - lastReadingAt_ >= periodMs_) {
        readNow_ = false;
        lastReadingAt_ = now;
        publishReading();
        if (state_ != ONLINE) return;
    }
    if (reportNow_) {
        reportNow_ = false;
        publishReport();
        if (state_ != ONLINE) return;
    }
    if (now - lastCheckAt_ >= DTWIN_CHECK_MS) {
        lastCheckAt_ = now;
        connectionAlive();
    }
}

// Asks the modem whether its MQTT connection still stands; moves on when it does not.
bool Device::connectionAlive() {
    if (modem_.command(F("+SMSTATE?"), kCommandTimeoutMs, F("+SMSTATE:")) != AtModem::OK) {
        if (++checkFailures_ >= 3) {
            retryLater(POWER_UP, F("the modem stopped answering"));
        }
        return false;
    }
    checkFailures_ = 0;
    if (strncmp(modem_.captured(), "+SMSTATE: 0", 11) == 0) {
        retryLater(MQTT_CONNECT, F("the MQTT connection was lost"));
        return false;
    }
    return true;
}

// --- MQTT through the modem -----------------------------------------------------------------

bool Device::configure(const __FlashStringHelper* key, const char* text, long number) {
    Print& out = modem_.begin();
    out.print(F("+SMCONF=\""));
    out.print(key);
    out.print(F("\","));
    if (text) {
        out.print('"');
        out.print(text);
        out.print('"');
        if (number >= 0) out.print(',');
    }
    if (number >= 0) out.print(number);
    return modem_.end(kCommandTimeoutMs) == AtModem::OK;
}

void Device::printTopic(Print& out, const __FlashStringHelper* suffix) {
    out.print(F(DTWIN_TOPIC_PREFIX "/" DTWIN_DEVICE_NAME));
    out.print(suffix);
}

bool Device::publish(const __FlashStringHelper* suffix, const char* payload, bool retain) {
    const size_t length = strlen(payload);
    Print& out = modem_.begin();
    out.print(F("+SMPUB=\""));
    printTopic(out, suffix);
    out.print(F("\","));
    out.print(length);
    out.print(retain ? F(",1,1") : F(",1,0"));
    if (modem_.endAwaitingPrompt(kCommandTimeoutMs) != AtModem::PROMPT) {
        say().print(F("publish failed: no > prompt after AT+SMPUB, the modem said "));
        sayModemAnswer();
        return false;
    }
    if (modem_.sendData(payload, length, kPublishTimeoutMs) != AtModem::OK) {
        say().print(F("publish failed: "));
        sayModemAnswer();
        return false;
    }
    return true;
}

bool Device::subscribe() {
    Print& out = modem_.begin();
    out.print(F("+SMSUB=\""));
    printTopic(out, F("/down"));
    out.print(F("\",1"));
    return modem_.end(kCommandTimeoutMs) == AtModem::OK;
}

void Device::publishReading() {
    // The original sketch's reading: sim-<dev> data <adc>.
    char payload[sizeof("sim-" DTWIN_DEVICE_NAME " data ") + 6];
    strcpy(payload, "sim-" DTWIN_DEVICE_NAME " data ");
    itoa(analogRead(PIN_LIGHT), payload + strlen(payload), 10);
    if (publish(F("/up"), payload, false)) {
        say().print(F("sent "));
        console_.println(payload);
    } else {
        connectionAlive();
    }
}

void Device::publishState() {
    // A JSON reading with the device's state beside it, which the bridge keeps as the twin's
    // reported led, period and firmware: {"value":512,"led":true,"period":60,"firmware":"…"}.
    char payload[sizeof("{\"value\":,\"led\":false,\"period\":,\"firmware\":\"" DTWIN_FIRMWARE "\"}") + 6 + 11];
    // The text stays in flash (PSTR): RAM is the UNO's scarcest part.
    strcpy_P(payload, PSTR("{\"value\":"));
    itoa(analogRead(PIN_LIGHT), payload + strlen(payload), 10);
    strcat_P(payload, ledOn_ ? PSTR(",\"led\":true,\"period\":") : PSTR(",\"led\":false,\"period\":"));
    ultoa(periodMs_ / 1000, payload + strlen(payload), 10);
    strcat_P(payload, PSTR(",\"firmware\":\"" DTWIN_FIRMWARE "\"}"));
    if (publish(F("/up"), payload, false)) {
        say().print(F("sent "));
        console_.println(payload);
    } else {
        connectionAlive();
    }
}

void Device::publishReport() {
    // Goes to the people on the device's phone list, by SMS through the bridge.
    char text[sizeof(DTWIN_DEVICE_NAME ": light , LED off, a reading every  s") + 12];
    strcpy(text, DTWIN_DEVICE_NAME ": light ");
    itoa(analogRead(PIN_LIGHT), text + strlen(text), 10);
    strcat(text, ledOn_ ? ", LED on" : ", LED off");
    strcat(text, ", a reading every ");
    ultoa(periodMs_ / 1000, text + strlen(text), 10);
    strcat(text, " s");
    if (!publish(F("/sms"), text, false)) connectionAlive();
}

// --- what the modem says by itself ------------------------------------------------------------

void Device::unsolicited(char* line, void* self) { static_cast<Device*>(self)->handleLine(line); }

// `line` is the modem's buffer, ours to cut up until the next character is read.
void Device::handleLine(char* line) {
    if (line[0] == '\0') {
        say().println(F("ignored a line too long to read"));
        return;
    }
    if (strncmp(line, "+APP PDP: DEACTIVE", 18) == 0 && state_ == ONLINE) {
        retryLater(NETWORK, F("the network dropped the data connection"));
        return;
    }
    const char* topic;
    const char* message;
    if (parseSubscriptionLine(line, &topic, &message) &&
        strcmp(topic, DTWIN_TOPIC_PREFIX "/" DTWIN_DEVICE_NAME "/down") == 0) {
        handleCommand(message);
    }
}

// Runs inside AT waits (a command can arrive during a publish): it only sets the LED and
// flags; the publishing it asks for happens in the next loop().
void Device::handleCommand(const char* text) {
    const Command command = parseCommand(text);
    say().print(F("command "));
    console_.print(text);
    switch (command.kind) {
    case COMMAND_LED_ON:
        ledOn_ = true;
        stateNow_ = true;
        digitalWrite(PIN_LED, HIGH);
        console_.println(F(": LED on"));
        break;
    case COMMAND_LED_OFF:
        ledOn_ = false;
        stateNow_ = true;
        digitalWrite(PIN_LED, LOW);
        console_.println(F(": LED off"));
        break;
    case COMMAND_READ:
        readNow_ = true;
        console_.println(F(": a reading now"));
        break;
    case COMMAND_REPORT:
        reportNow_ = true;
        console_.println(F(": a report by SMS"));
        break;
    case COMMAND_PERIOD:
        periodMs_ = command.seconds * 1000UL;
        stateNow_ = true;
        console_.print(F(": a reading every "));
        console_.print(command.seconds);
        console_.println(F(" s"));
        break;
    case COMMAND_BAD_ARGUMENT:
        console_.println(F(": PERIOD takes 10 to 86400 seconds"));
        break;
    case COMMAND_UNKNOWN:
        console_.println(F(": unknown (LIG, ACK, LED ON, LED OFF, READ, REPORT, PERIOD <s>)"));
        break;
    }
}

// --- bookkeeping -----------------------------------------------------------------------------

void Device::enter(State next) {
    state_ = next;
    attempts_ = 0;
    paused_ = false;
}

void Device::pause(unsigned long ms) {
    paused_ = true;
    resumeAt_ = millis() + ms;
}

void Device::retryLater(State next, const __FlashStringHelper* why) {
    say().print(why);
    console_.print(F("; again in "));
    console_.print(backoffMs_ / 1000);
    console_.println(F(" s"));
    enter(next);
    pause(backoffMs_);
    backoffMs_ = backoffMs_ * 2 > kMaxBackoffMs ? kMaxBackoffMs : backoffMs_ * 2;
}

Print& Device::say() {
    console_.print(F("dtwin " DTWIN_DEVICE_NAME ": "));
    return console_;
}

void Device::sayModemAnswer() { console_.println(modem_.lastResult()); }

#if DTWIN_TLS
void Device::sayFirmware() {
    if (!revision_[0]) return;
    console_.print(F(" (modem firmware "));
    console_.print(revision_);
    console_.print(')');
}
#endif
