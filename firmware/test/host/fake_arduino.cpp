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
    if (fileLeft_ > 0) {
        fileData_ += static_cast<char>(c);
        if (--fileLeft_ == 0) {
            files[fileName_] = fileData_;
            answer("OK");
        }
        return 1;
    }
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
        if (networkTime && networkTimeOn_) clockSet = true;
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
    if (command == "AT+CLTS=1") {
        networkTimeOn_ = true;
        return answer("OK");
    }
    if (command == "AT+GMR") {
        answer("Revision:" + revision);
        return answer("OK");
    }
    if (command == "AT+CCLK?") {
        answer(clockSet ? "+CCLK: \"26/12/02,10:00:00+00\"" : "+CCLK: \"80/01/06,00:00:12+00\"");
        return answer("OK");
    }
    if (starts("AT+CNTP=")) return answer("OK");
    if (command == "AT+CNTP") {
        answer("OK");
        if (ntpWorks) clockSet = true;
        return answer(ntpWorks ? "+CNTP: 1" : "+CNTP: 61");
    }
    if (command == "AT+CFSINIT") {
        fileBuffer_ = true;
        return answer("OK");
    }
    if (command == "AT+CFSTERM") {
        fileBuffer_ = false;
        return answer("OK");
    }
    if (starts("AT+CFSWFILE=")) {
        // AT+CFSWFILE=3,"name",0,size,ms
        char name[64] = "";
        int index = 0, mode = 0, size = 0, ms = 0;
        if (!fileBuffer_ || sscanf(command.c_str() + 12, "%d,\"%63[^\"]\",%d,%d,%d", &index, name, &mode, &size, &ms) != 5 ||
            size < 1 || size > 10240 || ms < 100 || ms > 10000)
            return answer("ERROR");
        if (!downloadPrompt) return;
        fileName_ = name;
        fileData_.clear();
        fileLeft_ = static_cast<size_t>(size);
        return answer("DOWNLOAD");
    }
    if (starts("AT+CSSLCFG=")) {
        const std::string arguments = command.substr(11);
        sslConfig.push_back(arguments);
        if (starts("AT+CSSLCFG=\"convert\",2,")) {
            const std::string name = unquote(arguments.substr(12));
            const auto file = files.find(name);
            if (convertFails || file == files.end() || file->second.compare(0, 27, "-----BEGIN CERTIFICATE-----") != 0)
                return answer("ERROR");
            converted_ = file->second;
        }
        return answer("OK");
    }
    if (starts("AT+SM")) {
        if (oldFirmware) return answer("ERROR");
        if (command == "AT+SMSSL=?") {
            answer("+SMSSL: (0-6),20,20");
            return answer("OK");
        }
        if (starts("AT+SMSSL=")) {
            if (smsslRefused) return answer("ERROR");
            tlsOn = command == "AT+SMSSL=1,\"ca.crt\",\"\"";
            return answer("OK");
        }
        if (starts("AT+SMCONF=")) {
            config.push_back(command.substr(10));
            return answer("OK");
        }
        if (command == "AT+SMCONN") {
            if (connectHangs) return;
            // Over TLS the broker's certificate is checked: dates (the clock) and the CA.
            const bool verified = !tlsOn || (clockSet && !converted_.empty() && (brokerCa.empty() || converted_ == brokerCa));
            if (!pdpActive_ || !brokerUp || refuseConnections > 0 || !verified) {
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
