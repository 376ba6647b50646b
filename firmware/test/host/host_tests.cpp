// Host tests of the sketch's code: the real at_modem, commands, device and dtwin_uno.ino,
// compiled with g++ (and sanitizers) against fake Arduino headers and a scripted SIM7000.
// Prints "N passed, N failed"; exits non-zero when anything failed.
#include <stdio.h>
#include <functional>
#include <string>
#include <vector>
#include "../../dtwin_uno/at_modem.h"
#include "../../dtwin_uno/commands.h"
#include "../../dtwin_uno/device.h"
#include <SoftwareSerial.h>
#include "fake_modem.h"

void setup();
void loop();

static int failures = 0;
#define CHECK(condition)                                                           \
    do {                                                                           \
        if (!(condition)) {                                                        \
            failures++;                                                            \
            printf("    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #condition); \
        }                                                                          \
    } while (0)
#define CHECK_EQ(actual, expected)                                                                        \
    do {                                                                                                  \
        const std::string a_ = (actual), e_ = (expected);                                                 \
        if (a_ != e_) {                                                                                   \
            failures++;                                                                                   \
            printf("    %s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #actual, a_.c_str(), e_.c_str()); \
        }                                                                                                 \
    } while (0)

// A board: the scripted modem, the AT channel and the device, with a captured console.
struct Board {
    struct Console : Print {
        std::string text;
        size_t write(uint8_t c) override {
            text += static_cast<char>(c);
            return 1;
        }
        using Print::write;
    };
    fake::Modem modem;
    AtModem at{modem};
    Console console;
    Device device{at, console, &Board::setBaud};
    static Board* current;

    Board() {
        fake::reset();
        current = this;
        fake::analog[0] = 512;
        device.begin();
    }
    static void setBaud(long baud) { current->modem.hostBaud = baud; }
    // DUMP=1 prints what the modem was sent and what the console said, for a failing test.
    ~Board() {
        if (getenv("DUMP")) {
            for (auto& c : modem.commands) printf("      > %s\n", c.c_str());
            printf("%s\n", console.text.c_str());
        }
    }

    // Runs the sketch's loop for `ms` of its own time; the loop must come back every time.
    void run(unsigned long ms) {
        const unsigned long end = fake::now + ms;
        int calls = 0;
        while (fake::now < end && calls < 1000000) {
            device.loop();
            delay(10);
            calls++;
        }
    }
    // Runs until the device is online (at most 5 minutes of its time).
    void runUntilOnline() {
        for (int i = 0; i < 30000 && device.state() != Device::ONLINE; i++) {
            device.loop();
            delay(10);
        }
        CHECK(device.state() == Device::ONLINE);
        device.loop();  // its first reading
    }
    bool said(const char* text) const { return console.text.find(text) != std::string::npos; }
    std::vector<std::string> payloads(const std::string& topic) const {
        std::vector<std::string> found;
        for (const auto& publish : modem.publishes)
            if (publish.topic == topic) found.push_back(publish.payload);
        return found;
    }
};
Board* Board::current = nullptr;

// --- commands and URC parsing -------------------------------------------------------------

static void commandWords() {
    CHECK(parseCommand("LIG").kind == COMMAND_LED_ON);
    CHECK(parseCommand(" lig ").kind == COMMAND_LED_ON);
    CHECK(parseCommand("led on").kind == COMMAND_LED_ON);
    CHECK(parseCommand("ON").kind == COMMAND_LED_ON);
    CHECK(parseCommand("ACK").kind == COMMAND_LED_OFF);
    CHECK(parseCommand("Led Off").kind == COMMAND_LED_OFF);
    CHECK(parseCommand("read").kind == COMMAND_READ);
    CHECK(parseCommand("REPORT\r\n").kind == COMMAND_REPORT);
    const Command period = parseCommand("PERIOD 120");
    CHECK(period.kind == COMMAND_PERIOD);
    CHECK(period.seconds == 120);
    CHECK(parseCommand("period   10").seconds == 10);
    CHECK(parseCommand("PERIOD 9").kind == COMMAND_BAD_ARGUMENT);
    CHECK(parseCommand("PERIOD 86401").kind == COMMAND_BAD_ARGUMENT);
    CHECK(parseCommand("PERIOD 99999999999999999999").kind == COMMAND_BAD_ARGUMENT);
    CHECK(parseCommand("PERIOD 1x").kind == COMMAND_BAD_ARGUMENT);
    CHECK(parseCommand("PERIOD ").kind == COMMAND_UNKNOWN);
    CHECK(parseCommand("LIGHT").kind == COMMAND_UNKNOWN);
    CHECK(parseCommand("").kind == COMMAND_UNKNOWN);
    CHECK(parseCommand(std::string(200, 'A').c_str()).kind == COMMAND_UNKNOWN);
}

static void subscriptionLines() {
    char line[] = "+SMSUB: \"dtwin/uno1/down\",\"LIG\"";
    const char* topic = nullptr;
    const char* message = nullptr;
    CHECK(parseSubscriptionLine(line, &topic, &message));
    CHECK_EQ(topic, "dtwin/uno1/down");
    CHECK_EQ(message, "LIG");
    char commas[] = "+SMSUB: \"dtwin/uno1/down\",\"PERIOD 30, \"please\"\"";
    CHECK(parseSubscriptionLine(commas, &topic, &message));
    CHECK_EQ(message, "PERIOD 30, \"please\"");
    char empty[] = "+SMSUB: \"dtwin/uno1/down\",\"\"";
    CHECK(parseSubscriptionLine(empty, &topic, &message));
    CHECK_EQ(message, "");
    char other[] = "+SMSTATE: 1";
    CHECK(!parseSubscriptionLine(other, &topic, &message));
    char unterminated[] = "+SMSUB: \"dtwin/uno1/down\",\"LIG";
    CHECK(!parseSubscriptionLine(unterminated, &topic, &message));
    char noMessage[] = "+SMSUB: \"dtwin/uno1/down\"";
    CHECK(!parseSubscriptionLine(noMessage, &topic, &message));
}

// --- the device against the scripted modem ------------------------------------------------
#if !DTWIN_TLS

static void bootsJoinsAndPublishes() {
    Board board;
    board.run(5000);
    CHECK(board.device.state() == Device::ONLINE);
    // The modem echoes until ATE0; the parser copes.
    std::vector<std::string> expected = {
        "AT", "ATE0", "AT+CNACT?", "AT+CNACT=1,\"super\"", "AT+CNACT?",
        "AT+SMCONF=\"URL\",\"broker.example.org\",1883", "AT+SMCONF=\"CLIENTID\",\"uno1\"", "AT+SMCONF=\"KEEPTIME\",60",
        "AT+SMCONF=\"CLEANSS\",0", "AT+SMCONF=\"QOS\",1", "AT+SMCONF=\"USERNAME\",\"uno1\"", "AT+SMCONF=\"PASSWORD\",\"s3cret\"",
        "AT+SMCONF=\"TOPIC\",\"dtwin/uno1/status\"", "AT+SMCONF=\"MESSAGE\",\"offline\"", "AT+SMCONF=\"RETAIN\",1", "AT+SMCONN",
        "AT+SMPUB=\"dtwin/uno1/status\",6,1,1", "AT+SMPUB=\"dtwin/uno1/up\",10,1,0", "AT+SMSUB=\"dtwin/uno1/down\",1",
        "AT+SMPUB=\"dtwin/uno1/up\",64,1,0",
    };
    CHECK(board.modem.commands.size() >= expected.size());
    for (size_t i = 0; i < expected.size() && i < board.modem.commands.size(); i++) CHECK_EQ(board.modem.commands[i], expected[i]);
    CHECK(board.modem.publishes.size() == 3);
    if (board.modem.publishes.size() == 3) {
        CHECK_EQ(board.modem.publishes[0].payload, "online");
        CHECK(board.modem.publishes[0].retain);
        CHECK_EQ(board.modem.publishes[1].payload, "uno1:awake");
        // The first reading carries the LED and period: the twin's reported state at start-up.
        CHECK_EQ(board.modem.publishes[2].payload, "{\"value\":512,\"led\":false,\"period\":60,\"firmware\":\"dtwin-uno 1.2\"}");
        CHECK(board.modem.publishes[2].qos == 1 && !board.modem.publishes[2].retain);
    }
    CHECK(!board.modem.subscriptions.empty() && board.modem.subscriptions[0] == "dtwin/uno1/down");
    CHECK(board.said("modem answers"));
    CHECK(board.said("network attached"));
    CHECK(board.said("online: a reading every 60 s on dtwin/uno1/up"));
    CHECK(board.said("sent {\"value\":512,\"led\":false,\"period\":60,\"firmware\":\"dtwin-uno 1.2\"}"));
}

static void readsEveryPeriod() {
    Board board;
    board.runUntilOnline();
    fake::analog[0] = 7;
    board.run(61000);
    fake::analog[0] = 1023;
    board.run(60000);
    const auto readings = board.payloads("dtwin/uno1/up");
    CHECK(readings.size() == 4);
    if (readings.size() == 4) {
        CHECK_EQ(readings[1], "{\"value\":512,\"led\":false,\"period\":60,\"firmware\":\"dtwin-uno 1.2\"}");
        CHECK_EQ(readings[2], "sim-uno1 data 7");
        CHECK_EQ(readings[3], "sim-uno1 data 1023");
    }
}

static void actsOnCommands() {
    Board board;
    board.runUntilOnline();
    board.modem.deliver("dtwin/uno1/down", "LIG");
    board.run(100);
    CHECK(board.device.ledOn());
    CHECK(fake::pins[PIN_LED] == HIGH);
    CHECK(board.said("command LIG: LED on"));
    // Every change is reported at once, for the twin.
    CHECK_EQ(board.payloads("dtwin/uno1/up").back(), "{\"value\":512,\"led\":true,\"period\":60,\"firmware\":\"dtwin-uno 1.2\"}");
    board.modem.deliver("dtwin/uno1/down", "ACK");
    board.run(100);
    CHECK(!board.device.ledOn());
    CHECK(fake::pins[PIN_LED] == LOW);
    CHECK_EQ(board.payloads("dtwin/uno1/up").back(), "{\"value\":512,\"led\":false,\"period\":60,\"firmware\":\"dtwin-uno 1.2\"}");
    // Another device's command is not ours.
    board.modem.deliver("dtwin/uno2/down", "LIG");
    board.run(100);
    CHECK(!board.device.ledOn());
    board.modem.deliver("dtwin/uno1/down", "led on");
    board.modem.deliver("dtwin/uno1/down", "PERIOD 10");
    board.run(100);
    CHECK(board.device.ledOn());
    CHECK(board.device.periodMs() == 10000);
    // Two changes in one loop: one report, with both.
    CHECK_EQ(board.payloads("dtwin/uno1/up").back(), "{\"value\":512,\"led\":true,\"period\":10,\"firmware\":\"dtwin-uno 1.2\"}");
    const size_t before = board.payloads("dtwin/uno1/up").size();
    board.run(10100);
    CHECK(board.payloads("dtwin/uno1/up").size() == before + 1);
    board.modem.deliver("dtwin/uno1/down", "READ");
    board.run(100);
    CHECK(board.payloads("dtwin/uno1/up").size() == before + 2);
    board.modem.deliver("dtwin/uno1/down", "REPORT");
    board.run(100);
    const auto sms = board.payloads("dtwin/uno1/sms");
    CHECK(sms.size() == 1);
    if (!sms.empty()) CHECK_EQ(sms[0], "uno1: light 512, LED on, a reading every 10 s");
    board.modem.deliver("dtwin/uno1/down", "DANCE");
    board.modem.deliver("dtwin/uno1/down", "PERIOD 5");
    board.run(100);
    CHECK(board.said("command DANCE: unknown"));
    CHECK(board.said("PERIOD takes 10 to 86400 seconds"));
    CHECK(board.device.periodMs() == 10000);
}

static void aCommandArrivingDuringAPublishIsKept() {
    Board board;
    board.runUntilOnline();
    // The URC is already waiting when the device starts its next publish.
    board.modem.deliver("dtwin/uno1/down", "LIG");
    board.modem.unsolicited("+SMSUB: \"dtwin/uno1/down\",\"" + std::string(300, 'x') + "\"");
    board.modem.deliver("dtwin/uno1/down", "READ");
    board.device.loop();
    board.run(100);
    CHECK(board.device.ledOn());
    CHECK(board.said("ignored a line too long to read"));
    // The LED's report is the reading READ asked for.
    const auto up = board.payloads("dtwin/uno1/up");
    CHECK(up.size() == 3);
    if (up.size() == 3) CHECK_EQ(up[2], "{\"value\":512,\"led\":true,\"period\":60,\"firmware\":\"dtwin-uno 1.2\"}");
}

static void reconnectsAfterTheConnectionDrops() {
    Board board;
    board.runUntilOnline();
    board.modem.brokerUp = false;
    board.run(DTWIN_CHECK_MS + 1000);
    CHECK(board.said("the MQTT connection was lost"));
    CHECK(board.device.state() != Device::ONLINE);
    const int connects = board.modem.count("AT+SMCONN");
    board.run(20000);
    CHECK(board.modem.count("AT+SMCONN") > connects);  // keeps trying
    board.modem.brokerUp = true;
    board.run(70000);
    CHECK(board.device.state() == Device::ONLINE);
    CHECK(board.modem.subscriptions.size() == 2);  // subscribed again
    CHECK(board.payloads("dtwin/uno1/status").size() == 2);
}

static void aFailedPublishIsNoticed() {
    Board board;
    board.runUntilOnline();
    board.modem.brokerUp = false;
    board.modem.deliver("dtwin/uno1/down", "READ");  // a reading now: it fails, which checks the connection at once
    board.run(100);
    CHECK(board.said("publish failed: ERROR"));
    CHECK(board.said("the MQTT connection was lost"));
}

static void oldFirmwareIsReportedAndRetriedForever() {
    Board board;
    board.modem.oldFirmware = true;
    board.run(10 * 60000UL);
    CHECK(board.device.modemLacksMqtt());
    CHECK(board.said("its firmware has no MQTT"));
    CHECK(board.said("firmware/README.md"));
    CHECK(board.device.state() != Device::ONLINE);
    const int tries = board.modem.count("AT+SMCONF=\"URL\"");
    CHECK(tries >= 5);
    board.run(5 * 60000UL);
    CHECK(board.modem.count("AT+SMCONF=\"URL\"") > tries);  // never gives up, never hangs
}

static void aSilentModemIsPoweredUp() {
    Board board;
    board.modem.silent = true;
    board.run(20000);
    CHECK(board.said("modem does not answer: pressing its power key (D12)"));
    CHECK(fake::pinHistory.find("D12=1 D12=0") != std::string::npos);
    CHECK(board.device.state() == Device::POWER_UP);
    board.modem.silent = false;
    board.run(20000);
    CHECK(board.device.state() == Device::ONLINE);
}

static void aModemAt115200IsSetTo19200() {
    Board board;
    board.modem.baud = 115200;
    board.run(10000);
    CHECK(board.modem.count("AT+IPR=19200") == 1);
    CHECK(board.said("modem was at 115200 baud"));
    CHECK(board.device.state() == Device::ONLINE);
}

static void waitsForTheNetwork() {
    Board board;
    board.modem.attachAfterQueries = 15;
    board.run(25000);
    CHECK(board.said("no network yet (APN super), still trying: +CNACT: 0,\"0.0.0.0\""));
    CHECK(board.device.state() == Device::NETWORK);
    board.run(30000);
    CHECK(board.device.state() == Device::ONLINE);
}

static void refusedConnectionsBackOff() {
    Board board;
    board.modem.refuseConnections = 3;
    board.run(60000);
    CHECK(board.said("MQTT connection to broker.example.org refused or failed: ERROR"));
    CHECK(board.said("again in 2 s"));
    CHECK(board.said("again in 4 s"));
    CHECK(board.said("again in 8 s"));
    CHECK(board.device.state() == Device::ONLINE);
    CHECK(board.modem.count("AT+SMCONN") == 4);
}

// The sketch file itself: setup() and loop() with the real SoftwareSerial's stand-in.
static void theSketchRuns() {
    fake::reset();
    fake::Modem modem;
    fake::plugged = &modem;
    fake::analog[0] = 300;
    setup();
    for (int i = 0; i < 1000; i++) {
        loop();
        delay(10);
    }
    CHECK(!modem.publishes.empty());
    CHECK_EQ(modem.publishes.back().payload, "{\"value\":300,\"led\":false,\"period\":60,\"firmware\":\"dtwin-uno 1.2\"}");
    CHECK(Serial.output.find("dtwin uno1: starting: broker broker.example.org:1883 (plain MQTT), APN super") != std::string::npos);
    modem.deliver("dtwin/uno1/down", "LIG");
    loop();
    CHECK(fake::pins[PIN_LED] == HIGH);
    fake::plugged = nullptr;
}

#endif  // !DTWIN_TLS

// --- TLS: the build add-device.sh --arduino provisions (DTWIN_TLS 1, tls_secrets.h) -------------
#if DTWIN_TLS

static const std::string kCa = DTWIN_BROKER_CA_PEM;

static void tlsBootUploadsTheCaAndConnectsOverTls() {
    Board board;
    board.modem.brokerCa = kCa;
    board.run(10000);
    CHECK(board.device.state() == Device::ONLINE);
    const std::vector<std::string> expected = {
        "AT", "ATE0", "AT+CLTS=1", "AT+GMR", "AT+CNACT?", "AT+CNACT=1,\"super\"", "AT+CNACT?", "AT+CCLK?", "AT+CFSINIT",
        "AT+CFSWFILE=3,\"ca.crt\",0," + std::to_string(kCa.size()) + ",10000", "AT+CFSTERM",
        "AT+CSSLCFG=\"sslversion\",0,3", "AT+CSSLCFG=\"sni\",0,\"broker.example.org\"", "AT+CSSLCFG=\"convert\",2,\"ca.crt\"",
        "AT+SMCONF=\"URL\",\"broker.example.org\",8883", "AT+SMCONF=\"CLIENTID\",\"uno1\"", "AT+SMCONF=\"KEEPTIME\",60",
        "AT+SMCONF=\"CLEANSS\",0", "AT+SMCONF=\"QOS\",1", "AT+SMCONF=\"USERNAME\",\"uno1\"", "AT+SMCONF=\"PASSWORD\",\"s3cret\"",
        "AT+SMCONF=\"TOPIC\",\"dtwin/uno1/status\"", "AT+SMCONF=\"MESSAGE\",\"offline\"", "AT+SMCONF=\"RETAIN\",1",
        "AT+SMSSL=1,\"ca.crt\",\"\"", "AT+SMCONN", "AT+SMPUB=\"dtwin/uno1/status\",6,1,1",
    };
    CHECK(board.modem.commands.size() >= expected.size());
    for (size_t i = 0; i < expected.size() && i < board.modem.commands.size(); i++) CHECK_EQ(board.modem.commands[i], expected[i]);
    // The file arrived whole, byte for byte, from flash.
    CHECK_EQ(board.modem.files["ca.crt"], kCa);
    CHECK(board.modem.tlsOn);
    CHECK(board.said("starting: broker broker.example.org:8883 (TLS, CA dtwin broker CA (broker.example.org))"));
    CHECK(board.said("modem firmware 1351B05SIM7000E"));
    CHECK(board.said("CA dtwin broker CA (broker.example.org) loaded into the modem, TLS 1.2"));
    CHECK(board.modem.count("AT+CNTP") == 0);  // network time came with the attach
    CHECK_EQ(board.payloads("dtwin/uno1/status").back(), "online");
    // A lost connection is made again without uploading the CA again.
    board.modem.brokerUp = false;
    board.run(DTWIN_CHECK_MS + 1000);
    board.modem.brokerUp = true;
    board.run(70000);
    CHECK(board.device.state() == Device::ONLINE);
    CHECK(board.modem.count("AT+SMCONN") >= 2);
    CHECK(board.modem.count("AT+CFSWFILE") == 1);
}

static void tlsWaitsForAClock() {
    Board board;
    board.modem.networkTime = false;
    board.modem.ntpWorks = false;
    board.run(60000);
    CHECK(board.said("the modem's clock is not set (+CCLK: \"80/01/06,00:00:12+00\")"));
    CHECK(board.said("waiting for network time (AT+CLTS=1) or NTP from pool.ntp.org"));
    CHECK(board.modem.count("AT+CNTP=\"pool.ntp.org\",0") >= 2);
    CHECK(board.modem.count("AT+SMCONN") == 0);  // never unchecked
    CHECK(board.modem.count("AT+CFSINIT") == 0);
    board.modem.ntpWorks = true;
    board.run(30000);
    CHECK(board.device.state() == Device::ONLINE);
}

static void tlsDownloadNeverComes() {
    Board board;
    board.modem.downloadPrompt = false;
    board.run(30000);
    CHECK(board.said("AT+CFSWFILE: no DOWNLOAD from the modem, it said (no answer)"));
    CHECK(board.said("the CA did not reach the modem; again in 2 s"));
    CHECK(board.modem.count("AT+CFSTERM") == board.modem.count("AT+CFSINIT"));  // the buffer is always freed
    CHECK(board.modem.count("AT+SMCONN") == 0);
    board.modem.downloadPrompt = true;
    board.run(60000);
    CHECK(board.device.state() == Device::ONLINE);
}

static void tlsConvertFails() {
    Board board;
    board.modem.convertFails = true;
    board.run(20000);
    CHECK(board.said("the modem could not read the CA (AT+CSSLCFG convert answered ERROR)"));
    CHECK(board.modem.count("AT+SMCONN") == 0);
    CHECK(board.device.state() == Device::TLS_SETUP);
}

static void tlsRefusedBySmsslIsReportedWithTheRevision() {
    Board board;
    board.modem.revision = "1351B03SIM7000C";
    board.modem.smsslRefused = true;
    board.run(5 * 60000UL);
    CHECK(board.device.modemLacksTls());
    CHECK_EQ(board.device.firmwareRevision(), "1351B03SIM7000C");
    CHECK(board.said("the modem refuses MQTT over TLS with a CA alone (AT+SMSSL=1,\"ca.crt\",\"\" answered ERROR; "
                     "AT+SMSSL=? says +SMSSL: (0-6),20,20) (modem firmware 1351B03SIM7000C)"));
    CHECK(board.said("Still trying; never without TLS."));
    // Never a plain connection instead.
    CHECK(board.modem.count("AT+SMCONN") == 0);
    const int tries = board.modem.count("AT+SMSSL=1");
    board.run(3 * 60000UL);
    CHECK(board.modem.count("AT+SMSSL=1") > tries);
}

static void tlsConnectTimesOut() {
    Board board;
    board.modem.connectHangs = true;
    board.run(90000);
    CHECK(board.said("MQTT connection to broker.example.org refused or failed: (no answer)"));
    CHECK(board.device.state() != Device::ONLINE);
    board.modem.connectHangs = false;
    board.run(4 * 60000UL);
    CHECK(board.device.state() == Device::ONLINE);
}

static void tlsWrongCaNeverConnectsAndSaysWhy() {
    Board board;
    board.modem.brokerCa = "-----BEGIN CERTIFICATE-----\nanother CA\n-----END CERTIFICATE-----\n";
    board.run(5 * 60000UL);
    CHECK(board.device.state() != Device::ONLINE);
    CHECK(board.modem.publishes.empty());
    CHECK(board.said("the broker's certificate does not verify against the CA built in (dtwin broker CA (broker.example.org))"));
    CHECK(board.said("(modem firmware 1351B05SIM7000E)"));
    CHECK(board.modem.count("AT+SMSSL=1,\"ca.crt\",\"\"") == board.modem.count("AT+SMCONN"));  // TLS before every try
}

#endif  // DTWIN_TLS

int main() {
    const struct {
        const char* name;
        void (*run)();
    } tests[] = {
        {"command words", commandWords},
        {"subscription lines", subscriptionLines},
#if DTWIN_TLS
        {"TLS: the CA is uploaded from flash and the connection is TLS", tlsBootUploadsTheCaAndConnectsOverTls},
        {"TLS: waits for a clock, asks NTP", tlsWaitsForAClock},
        {"TLS: DOWNLOAD never comes", tlsDownloadNeverComes},
        {"TLS: the CA conversion fails", tlsConvertFails},
        {"TLS: AT+SMSSL refused, reported with the firmware revision", tlsRefusedBySmsslIsReportedWithTheRevision},
        {"TLS: AT+SMCONN times out", tlsConnectTimesOut},
        {"TLS: a wrong CA never connects, and the console says why", tlsWrongCaNeverConnectsAndSaysWhy},
#else
        {"boots, joins and publishes", bootsJoinsAndPublishes},
        {"reads every period", readsEveryPeriod},
        {"acts on commands", actsOnCommands},
        {"a command arriving during a publish is kept", aCommandArrivingDuringAPublishIsKept},
        {"reconnects after the connection drops", reconnectsAfterTheConnectionDrops},
        {"a failed publish is noticed", aFailedPublishIsNoticed},
        {"old modem firmware is reported and retried forever", oldFirmwareIsReportedAndRetriedForever},
        {"a silent modem is powered up", aSilentModemIsPoweredUp},
        {"a modem at 115200 baud is set to 19200", aModemAt115200IsSetTo19200},
        {"waits for the network", waitsForTheNetwork},
        {"refused connections back off", refusedConnectionsBackOff},
        {"the sketch runs", theSketchRuns},
#endif
    };
    int passed = 0, failed = 0;
    for (const auto& test : tests) {
        const int before = failures;
        test.run();
        if (failures == before) {
            passed++;
            printf("  ok    %s\n", test.name);
        } else {
            failed++;
            printf("  FAIL  %s\n", test.name);
        }
    }
    printf("firmware%s: %d passed, %d failed\n", DTWIN_TLS ? " (TLS build)" : "", passed, failed);
    return failed == 0 ? 0 : 1;
}
