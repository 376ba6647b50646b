#include "commands.h"
#include <ctype.h>
#include <string.h>

// Compares a trimmed span with an upper-case word, ignoring case.
static bool is(const char* text, uint8_t length, const char* word) {
    if (strlen(word) != length) return false;
    for (uint8_t i = 0; i < length; i++) {
        if (toupper(static_cast<unsigned char>(text[i])) != word[i]) return false;
    }
    return true;
}

Command parseCommand(const char* text) {
    Command command = {COMMAND_UNKNOWN, 0};
    while (*text == ' ' || *text == '\t') text++;
    size_t total = strlen(text);
    while (total > 0 && (text[total - 1] == ' ' || text[total - 1] == '\t' || text[total - 1] == '\r' || text[total - 1] == '\n')) total--;
    if (total > 64) return command;
    const uint8_t length = static_cast<uint8_t>(total);
    if (is(text, length, "LIG") || is(text, length, "LED ON") || is(text, length, "ON")) {
        command.kind = COMMAND_LED_ON;
    } else if (is(text, length, "ACK") || is(text, length, "LED OFF") || is(text, length, "OFF")) {
        command.kind = COMMAND_LED_OFF;
    } else if (is(text, length, "READ")) {
        command.kind = COMMAND_READ;
    } else if (is(text, length, "REPORT")) {
        command.kind = COMMAND_REPORT;
    } else if (length > 7 && is(text, 7, "PERIOD ")) {
        uint32_t seconds = 0;
        uint8_t i = 7;
        while (i < length && text[i] == ' ') i++;
        if (i == length) {
            command.kind = COMMAND_BAD_ARGUMENT;
            return command;
        }
        for (; i < length; i++) {
            if (!isdigit(static_cast<unsigned char>(text[i])) || seconds > kMaxPeriodSeconds) {
                command.kind = COMMAND_BAD_ARGUMENT;
                return command;
            }
            seconds = seconds * 10 + static_cast<uint32_t>(text[i] - '0');
        }
        command.kind = (seconds >= kMinPeriodSeconds && seconds <= kMaxPeriodSeconds) ? COMMAND_PERIOD : COMMAND_BAD_ARGUMENT;
        command.seconds = seconds;
    }
    return command;
}

bool parseSubscriptionLine(char* line, const char** topic, const char** message) {
    static const char kPrefix[] = "+SMSUB: \"";
    if (strncmp(line, kPrefix, sizeof kPrefix - 1) != 0) return false;
    char* start = line + sizeof kPrefix - 1;
    char* separator = strstr(start, "\",\"");
    if (!separator) return false;
    // The closing quote: after the message's opening one (an empty message is still one).
    char* end = line + strlen(line);
    if (end - 1 < separator + 3 || end[-1] != '"') return false;
    *separator = '\0';
    end[-1] = '\0';
    *topic = start;
    *message = separator + 3;
    return true;
}
