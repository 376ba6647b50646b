#include "at_modem.h"
#include <string.h>

Print& AtModem::begin() {
    poll();  // whatever arrived before this command is not its answer
    port_.print(F("AT"));
    return port_;
}

// Commands end with CR alone (V.25ter's S3): an LF after it would be taken as the first byte
// of the data that follows AT+SMPUB's prompt.
AtModem::Result AtModem::end(unsigned long timeoutMs, const __FlashStringHelper* capture) {
    port_.print('\r');
    return wait(RESULT, timeoutMs, capture);
}

AtModem::Result AtModem::endAwaitingPrompt(unsigned long timeoutMs) {
    port_.print('\r');
    return wait(PROMPT_CHAR, timeoutMs, nullptr);
}

AtModem::Result AtModem::endAwaitingLine(unsigned long timeoutMs, const __FlashStringHelper* line) {
    port_.print('\r');
    promptLine_ = line;
    const Result result = wait(PROMPT_LINE, timeoutMs, nullptr);
    promptLine_ = nullptr;
    return result;
}

AtModem::Result AtModem::command(const __FlashStringHelper* text, unsigned long timeoutMs, const __FlashStringHelper* capture) {
    begin().print(text);
    return end(timeoutMs, capture);
}

AtModem::Result AtModem::sendData(const char* data, size_t length, unsigned long timeoutMs) {
    port_.write(reinterpret_cast<const uint8_t*>(data), length);
    return wait(RESULT, timeoutMs, nullptr);
}

AtModem::Result AtModem::sendFlashData(const char* data, size_t length, unsigned long timeoutMs) {
    for (size_t i = 0; i < length; i++) port_.write(static_cast<uint8_t>(pgm_read_byte(data + i)));
    return wait(RESULT, timeoutMs, nullptr);
}

void AtModem::poll() {
    while (port_.available() > 0) {
        if (take(static_cast<char>(port_.read()))) dispatch(nullptr);
    }
}

AtModem::Result AtModem::wait(Waiting what, unsigned long timeoutMs, const __FlashStringHelper* capture) {
    waiting_ = what;
    outcome_ = -1;
    captured_[0] = '\0';
    lastResult_[0] = '\0';
    const unsigned long start = millis();
    while (outcome_ < 0) {
        if (port_.available() > 0) {
            if (take(static_cast<char>(port_.read()))) dispatch(capture);
            continue;
        }
        if (millis() - start >= timeoutMs) {
            copy(lastResult_, "(no answer)", sizeof lastResult_);
            outcome_ = TIMEOUT;
            break;
        }
        delay(1);
    }
    waiting_ = NOTHING;
    return static_cast<Result>(outcome_);
}

bool AtModem::take(char c) {
    if (c == '\r' || c == '\n') return length_ > 0 || overflow_;
    if (c == ' ' && length_ == 0) return false;  // "> " and padding: no line starts with a space
    if (length_ < kLineSize - 1) {
        line_[length_++] = c;
        line_[length_] = '\0';
    } else {
        overflow_ = true;
    }
    // The prompt comes without a line ending.
    return waiting_ == PROMPT_CHAR && length_ <= 2 && line_[0] == '>';
}

static bool startsWith(const char* line, const char* prefix) { return strncmp(line, prefix, strlen(prefix)) == 0; }

void AtModem::dispatch(const __FlashStringHelper* capture) {
    char* line = line_;
    const bool whole = !overflow_;
    length_ = 0;
    overflow_ = false;
    if (!whole) {
        // Only part of an over-long line was kept: acting on it could be acting on the wrong
        // command, so it is dropped (the device says so).
        line_[0] = '\0';
        if (handler_) handler_(line_, context_);
        return;
    }
    if (waiting_ == PROMPT_CHAR && line[0] == '>') {
        outcome_ = PROMPT;
    } else if (waiting_ == PROMPT_LINE && strcmp_P(line, reinterpret_cast<const char*>(promptLine_)) == 0) {
        outcome_ = PROMPT;
    } else if (startsWith(line, "AT") || startsWith(line, "at")) {
        // The modem echoes commands until ATE0.
    } else if (waiting_ != NOTHING && strcmp(line, "OK") == 0) {
        copy(lastResult_, line, sizeof lastResult_);
        outcome_ = OK;
    } else if (waiting_ != NOTHING && (strcmp(line, "ERROR") == 0 || startsWith(line, "+CME ERROR") || startsWith(line, "+CMS ERROR"))) {
        copy(lastResult_, line, sizeof lastResult_);
        outcome_ = ERROR;
    } else if (waiting_ != NOTHING && capture && strncmp_P(line, reinterpret_cast<const char*>(capture), strlen_P(reinterpret_cast<const char*>(capture))) == 0) {
        copy(captured_, line, sizeof captured_);
    } else if (handler_) {
        handler_(line, context_);
    }
    line_[0] = '\0';
}

void AtModem::copy(char* to, const char* from, uint8_t size) {
    strncpy(to, from, size - 1);
    to[size - 1] = '\0';
}
