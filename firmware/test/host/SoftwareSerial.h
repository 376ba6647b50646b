// SoftwareSerial for the host tests: the bytes go to and come from whichever modem the test
// plugged in (fake::plugModem), at the baud rate the sketch chose.
#pragma once
#include <Arduino.h>

namespace fake {
class Modem;
// The modem the sketch's SoftwareSerial talks to.
extern Modem* plugged;
}  // namespace fake

class SoftwareSerial : public Stream {
public:
    SoftwareSerial(uint8_t rx, uint8_t tx) : rx_(rx), tx_(tx) {}
    void begin(long baud);
    size_t write(uint8_t c) override;
    using Print::write;
    int available() override;
    int read() override;
    int peek() override;

private:
    uint8_t rx_, tx_;
};
