// A scripted SIM7000: it answers the AT commands the sketch sends the way the modem's MQTT
// application note says, records what it was asked, and can be told to misbehave (silent, old
// firmware without MQTT, no network, refused connections, a dropped connection).
#pragma once
#include <Arduino.h>
#include <deque>
#include <map>
#include <string>
#include <vector>

namespace fake {

struct Publish {
    std::string topic;
    std::string payload;
    int qos;
    bool retain;
};

class Modem : public Stream {
public:
    // --- what the test sets ---
    bool echo = true;                 // until ATE0, as a new modem
    bool silent = false;              // answers nothing at all
    bool oldFirmware = false;         // ERROR to every AT+SM... command
    long baud = 19200;                // the speed it talks at (AT+IPR changes it)
    int attachAfterQueries = 0;       // AT+CNACT? says 0 this many times after AT+CNACT=1
    int refuseConnections = 0;        // AT+SMCONN answers ERROR this many times
    bool brokerUp = true;             // the MQTT connection stands (false: SMSTATE 0, SMPUB ERROR)
    // TLS (AT+CFS..., AT+CSSLCFG, AT+SMSSL) and the clock it needs.
    std::string revision = "1351B05SIM7000E";  // AT+GMR
    bool clockSet = false;            // AT+CCLK? gives a real date (else 1980, as after power-up)
    bool networkTime = true;          // with AT+CLTS=1, attaching sets the clock
    bool ntpWorks = true;             // AT+CNTP sets the clock
    bool downloadPrompt = true;       // AT+CFSWFILE answers DOWNLOAD (false: nothing at all)
    bool convertFails = false;        // AT+CSSLCFG="convert" answers ERROR
    bool smsslRefused = false;        // AT+SMSSL=1,... answers ERROR (firmware without CA-only TLS)
    bool connectHangs = false;        // AT+SMCONN answers nothing
    std::string brokerCa;             // the CA the broker's certificate is signed by ("": any)

    // --- what the test reads ---
    std::vector<std::string> commands;  // every line received, without line endings
    std::vector<Publish> publishes;
    std::vector<std::string> subscriptions;
    std::vector<std::string> config;    // AT+SMCONF arguments in order
    bool connected = false;
    std::map<std::string, std::string> files;  // what AT+CFSWFILE wrote, by name
    std::vector<std::string> sslConfig;        // AT+CSSLCFG arguments in order
    bool tlsOn = false;                         // AT+SMSSL=1 was taken

    long hostBaud = 19200;              // what the sketch's serial port is set to

    // Something arriving from the network: a message on a subscribed topic.
    void deliver(const std::string& topic, const std::string& message) {
        answer("+SMSUB: \"" + topic + "\",\"" + message + "\"");
    }
    void unsolicited(const std::string& line) { answer(line); }
    int count(const std::string& prefix) const {
        int n = 0;
        for (const auto& command : commands) n += command.compare(0, prefix.size(), prefix) == 0;
        return n;
    }

    size_t write(uint8_t c) override;
    using Print::write;
    int available() override { return static_cast<int>(input_.size()); }
    int read() override {
        if (input_.empty()) return -1;
        const int c = static_cast<unsigned char>(input_.front());
        input_.pop_front();
        return c;
    }
    int peek() override { return input_.empty() ? -1 : static_cast<unsigned char>(input_.front()); }

private:
    void handle(const std::string& command);
    void answer(const std::string& line) {
        for (char c : "\r\n" + line + "\r\n") input_.push_back(c);
    }
    static std::string unquote(const std::string& text) {
        if (text.size() >= 2 && text.front() == '"' && text.back() == '"') return text.substr(1, text.size() - 2);
        return text;
    }

    std::string line_;
    std::deque<char> input_;
    size_t payloadLeft_ = 0;
    size_t fileLeft_ = 0;
    std::string fileName_, fileData_;
    bool fileBuffer_ = false;  // AT+CFSINIT .. AT+CFSTERM
    bool networkTimeOn_ = false;
    std::string converted_;  // the CA AT+CSSLCFG="convert",2 took
    Publish pending_;
    bool pdpRequested_ = false;
    bool pdpActive_ = false;
    int queriesSinceRequest_ = 0;
};

}  // namespace fake
