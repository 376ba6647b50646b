// What the device does with a text that arrives on dtwin/<dev>/down: the original sketch's
// LIG and ACK, and words a person can text (relayed by the bridge from SMS).
#pragma once
#include <stdint.h>

enum CommandKind : uint8_t {
    COMMAND_LED_ON,   // LIG, LED ON, ON
    COMMAND_LED_OFF,  // ACK, LED OFF, OFF
    COMMAND_READ,     // READ: publish a reading now
    COMMAND_REPORT,   // REPORT: text the device's state to its people (dtwin/<dev>/sms)
    COMMAND_PERIOD,   // PERIOD <seconds>: report every 10 s .. 1 day
    COMMAND_UNKNOWN,
    COMMAND_BAD_ARGUMENT,
};

struct Command {
    CommandKind kind;
    uint32_t seconds;  // COMMAND_PERIOD
};

// Case and surrounding spaces do not matter ("led on", " LIG ").
Command parseCommand(const char* text);

// A "+SMSUB: "topic","message"" line split in place; false when it is not one.
bool parseSubscriptionLine(char* line, const char** topic, const char** message);

static const uint32_t kMinPeriodSeconds = 10;
static const uint32_t kMaxPeriodSeconds = 86400;
