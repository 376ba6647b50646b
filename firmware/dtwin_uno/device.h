// The device's life: modem up, network attached, MQTT configured and connected, then a
// reading every period and commands as they come. loop() never waits longer than one AT
// command's timeout, and every failure leads to a retry after a growing pause, said on the
// console: the sketch never hangs, whatever the modem does.
#pragma once
#include <Arduino.h>
#include "at_modem.h"
#include "commands.h"
#include "config.h"

class Device {
public:
    typedef void (*BaudSetter)(long baud);
    // CLOCK and TLS_SETUP only with DTWIN_TLS: a valid clock, then the broker's CA in the modem.
    enum State : uint8_t { POWER_UP, MODEM_SETUP, NETWORK, CLOCK, TLS_SETUP, MQTT_SETUP, MQTT_CONNECT, ONLINE };

    Device(AtModem& modem, Print& console, BaudSetter setModemBaud);
    void begin();
    void loop();

    State state() const { return state_; }
    bool ledOn() const { return ledOn_; }
    unsigned long periodMs() const { return periodMs_; }
    // True once the modem has refused the MQTT commands often enough to say it has no MQTT.
    bool modemLacksMqtt() const { return smRefusals_ >= kRefusalsBeforeVerdict; }
#if DTWIN_TLS
    // True once the modem has refused MQTT over TLS with a CA alone (AT+SMSSL) often enough.
    bool modemLacksTls() const { return sslRefusals_ >= kRefusalsBeforeVerdict; }
    // The modem's firmware revision (AT+GMR), "" until read.
    const char* firmwareRevision() const { return revision_; }
#endif

    static const uint8_t kRefusalsBeforeVerdict = 3;
    static const unsigned long kMaxBackoffMs = 60000UL;

private:
    static void unsolicited(char* line, void* self);
    void handleLine(char* line);
    void handleCommand(const char* text);

    void powerUp();
    void setUpModem();
    void attach();
    void configureMqtt();
    // The TLS build's steps (DTWIN_TLS).
    void checkClock();
    void setUpTls();
    bool uploadCa();
    void readRevision();
    bool selectTls();
    void connectMqtt();
    void stayOnline();
    bool connectionAlive();

    bool configure(const __FlashStringHelper* key, const char* text, long number);
    bool publish(const __FlashStringHelper* suffix, const char* payload, bool retain);
    bool subscribe();
    void printTopic(Print& out, const __FlashStringHelper* suffix);
    void publishReading();
    void publishState();
    void publishReport();

    void enter(State next);
    void pause(unsigned long ms);
    void retryLater(State next, const __FlashStringHelper* why);
    Print& say();
    void sayModemAnswer();
    void sayFirmware();  // TLS builds

    AtModem& modem_;
    Print& console_;
    BaudSetter setModemBaud_;
    State state_ = POWER_UP;
    bool paused_ = false;
    unsigned long resumeAt_ = 0;
    unsigned long backoffMs_ = 2000;
    unsigned long periodMs_ = DTWIN_PERIOD_MS;
    unsigned long lastReadingAt_ = 0;
    unsigned long lastCheckAt_ = 0;
    uint8_t attempts_ = 0;
    uint8_t smRefusals_ = 0;
    uint8_t checkFailures_ = 0;
#if DTWIN_TLS
    uint8_t sslRefusals_ = 0;
    uint8_t connectFailures_ = 0;
    bool caLoaded_ = false;  // the CA is in the modem and converted, since its last power-up
    char revision_[24] = "";
#endif
    bool ledOn_ = false;
    bool readNow_ = false;
    bool stateNow_ = false;  // report the LED and period (at start-up and after each change)
    bool reportNow_ = false;
};
