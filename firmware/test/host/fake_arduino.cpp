#include <Arduino.h>
#include <SoftwareSerial.h>
#include <stdio.h>
#include "fake_modem.h"

namespace fake {
unsigned long now = 0;
uint8_t pins[20];
int analog[6];
std::string pinHistory;
Modem* plugged = nullptr;

void reset() {
    now = 0;
    memset(pins, 0, sizeof pins);
    for (int& value : analog) value = 0;
    pinHistory.clear();
}
}  // namespace fake

HardwareSerial Serial;

unsigned long millis() { return fake::now; }
void delay(unsigned long ms) { fake::now += ms; }
void pinMode(uint8_t, uint8_t) {}
void digitalWrite(uint8_t pin, uint8_t value) {
    fake::pins[pin] = value;
    fake::pinHistory += "D" + std::to_string(pin) + "=" + std::to_string(value) + " ";
}
int analogRead(uint8_t pin) { return fake::analog[pin - A0]; }

char* itoa(int value, char* out, int base) {
    (void)base;
    sprintf(out, "%d", value);
    return out;
}
char* ultoa(unsigned long value, char* out, int base) {
    (void)base;
    sprintf(out, "%lu", value);
    return out;
}

// SoftwareSerial: a byte crosses only when both ends talk at the same speed (a modem at
// 115200 hears noise from a port at 19200, and the other way round).
void SoftwareSerial::begin(long baud) {
    if (fake::plugged) fake::plugged->hostBaud = baud;
}
size_t SoftwareSerial::write(uint8_t c) {
    if (!fake::plugged) return 1;
    return fake::plugged->write(c);
}
int SoftwareSerial::available() { return fake::plugged ? fake::plugged->available() : 0; }
int SoftwareSerial::read() { return fake::plugged ? fake::plugged->read() : -1; }
int SoftwareSerial::peek() { return fake::plugged ? fake::plugged->peek() : -1; }

namespace fake {

size_t Modem::write(uint8_t c) {
    if (hostBaud != baud) return 1;  // garbled: the modem hears nothing useful
    if (payloadLeft_ > 0) {
        pending_.payload += static_cast<char>(c);
        if (--payloadLeft_ == 0) {
            if (brokerUp && connected) {
                publishes.push_back(pending_);
                answer("OK");
            } else {
                answer("ERROR");
            }
        }
        return 1;
    }
    if (c == '\r' || c == '\n') {
        if (!line_.empty()) {
            const std::string command = line_;
            line_.clear();
            commands.push_back(command);
            if (echo && !silent) {
                for (char e : command + "\r") input_.push_back(e);
            }
            if (!silent) handle(command);
        }
        return 1;
    }
    line_ += static_cast<char>(c);
    return 1;
}

void Modem::handle(const std::string& command) {
    const auto starts = [&](const char* prefix) { return command.compare(0, strlen(prefix), prefix) == 0; };
    if (command == "AT") return answer("OK");
    if (command == "ATE0") {
        echo = false;
        return answer("OK");
    }
    if (starts("AT+IPR=")) {
        answer("OK");
        baud = atol(command.c_str() + 7);
        return;
    }
    if (starts("AT+CNACT=1,")) {
        if (!pdpRequested_) queriesSinceRequest_ = 0;  // asking again does not start over
        pdpRequested_ = true;
        answer("OK");
        if (attachAfterQueries == 0) {
            pdpActive_ = true;
            answer("+APP PDP: ACTIVE");
        }
        return;
    }
    if (command == "AT+CNACT?") {
        if (pdpRequested_ && !pdpActive_ && ++queriesSinceRequest_ > attachAfterQueries) pdpActive_ = true;
        answer(pdpActive_ ? "+CNACT: 1,\"10.64.0.7\"" : "+CNACT: 0,\"0.0.0.0\"");
        return answer("OK");
    }
    if (starts("AT+SM")) {
        if (oldFirmware) return answer("ERROR");
        if (starts("AT+SMCONF=")) {
            config.push_back(command.substr(10));
            return answer("OK");
        }
        if (command == "AT+SMCONN") {
            if (!pdpActive_ || !brokerUp || refuseConnections > 0) {
                if (refuseConnections > 0) refuseConnections--;
                return answer("ERROR");
            }
            connected = true;
            return answer("OK");
        }
        if (command == "AT+SMSTATE?") {
            answer(std::string("+SMSTATE: ") + (connected && brokerUp ? "1" : "0"));
            if (!brokerUp) connected = false;
            return answer("OK");
        }
        if (starts("AT+SMPUB=")) {
            // AT+SMPUB="topic",length,qos,retain
            const std::string arguments = command.substr(9);
            const size_t quote = arguments.find('"', 1);
            pending_ = Publish{arguments.substr(1, quote - 1), "", 0, false};
            int length = 0, qos = 0, retain = 0;
            sscanf(arguments.c_str() + quote + 1, ",%d,%d,%d", &length, &qos, &retain);
            pending_.qos = qos;
            pending_.retain = retain == 1;
            payloadLeft_ = static_cast<size_t>(length);
            for (char c : std::string("\r\n> ")) input_.push_back(c);
            return;
        }
        if (starts("AT+SMSUB=")) {
            if (!connected) return answer("ERROR");
            const std::string arguments = command.substr(9);
            subscriptions.push_back(unquote(arguments.substr(0, arguments.rfind(','))));
            return answer("OK");
        }
        if (command == "AT+SMDISC") {
            connected = false;
            return answer("OK");
        }
    }
    answer("ERROR");
}

}  // namespace fake
