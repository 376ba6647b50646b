// The modem's AT command channel: commands out, lines in, every wait bounded by a timeout.
// Lines that are not the answer being waited for (URCs such as +SMSUB) go to a handler, so
// a command arriving from the broker in the middle of a publish is not lost.
#pragma once
#include <Arduino.h>

class AtModem {
public:
    enum Result : uint8_t { OK, ERROR, TIMEOUT, PROMPT };
    typedef void (*LineHandler)(char* line, void* context);

    explicit AtModem(Stream& port) : port_(port) {}

    // The handler may cut the line up; a line too long to keep whole reaches it as "".
    void onUnsolicited(LineHandler handler, void* context) {
        handler_ = handler;
        context_ = context;
    }

    // A command in pieces: begin() prints "AT", the caller prints the rest to the returned
    // Print, end() sends the line ending and waits for OK or ERROR. A line starting with
    // `capture` seen meanwhile is kept in captured().
    Print& begin();
    Result end(unsigned long timeoutMs, const __FlashStringHelper* capture = nullptr);
    // The same, waiting for the '>' prompt instead (AT+SMPUB).
    Result endAwaitingPrompt(unsigned long timeoutMs);
    // The same, waiting for a whole line instead (AT+CFSWFILE's DOWNLOAD): PROMPT when it comes.
    Result endAwaitingLine(unsigned long timeoutMs, const __FlashStringHelper* line);
    // A whole command held in flash: F("+SMDISC") sends AT+SMDISC.
    Result command(const __FlashStringHelper* text, unsigned long timeoutMs, const __FlashStringHelper* capture = nullptr);
    // Raw bytes after a prompt, then the wait for OK.
    Result sendData(const char* data, size_t length, unsigned long timeoutMs);
    // The same, the bytes read one by one from flash (PROGMEM): a file far larger than the RAM.
    Result sendFlashData(const char* data, size_t length, unsigned long timeoutMs);

    // Reads what has arrived and hands complete unsolicited lines to the handler. Call it
    // often: SoftwareSerial holds only 64 bytes.
    void poll();

    const char* captured() const { return captured_; }
    // The final line of the last command (OK, ERROR, +CME ERROR: ...), for the console.
    const char* lastResult() const { return lastResult_; }

    static const uint8_t kLineSize = 160;

private:
    enum Waiting : uint8_t { NOTHING, RESULT, PROMPT_CHAR, PROMPT_LINE };
    Result wait(Waiting what, unsigned long timeoutMs, const __FlashStringHelper* capture);
    // Takes one character; returns true when a line (or the prompt) is complete.
    bool take(char c);
    void dispatch(const __FlashStringHelper* capture);
    static void copy(char* to, const char* from, uint8_t size);

    Stream& port_;
    LineHandler handler_ = nullptr;
    void* context_ = nullptr;
    char line_[kLineSize];
    uint8_t length_ = 0;
    bool overflow_ = false;
    Waiting waiting_ = NOTHING;
    int8_t outcome_ = -1;
    const __FlashStringHelper* promptLine_ = nullptr;
    char captured_[48] = "";
    char lastResult_[32] = "";
};
