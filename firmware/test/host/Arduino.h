// Just enough of the Arduino core for the sketch's code to compile and run on the build
// machine: Print and Stream, F(), a clock that moves only when the code waits, pins and the
// ADC as arrays the tests set and read.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <string>

typedef uint8_t byte;
#define HIGH 1
#define LOW 0
#define INPUT 0
#define OUTPUT 1
#define A0 14

class __FlashStringHelper;
#define F(text) (reinterpret_cast<const __FlashStringHelper*>(text))
#define PROGMEM
#define strncmp_P strncmp
#define strlen_P strlen
#define strcpy_P strcpy
#define strcat_P strcat
#define strcmp_P strcmp
#define pgm_read_byte(address) (*reinterpret_cast<const uint8_t*>(address))
#define PSTR(text) (text)

unsigned long millis();
void delay(unsigned long ms);
void pinMode(uint8_t pin, uint8_t mode);
void digitalWrite(uint8_t pin, uint8_t value);
int analogRead(uint8_t pin);
// avr-libc's, which glibc lacks.
char* itoa(int value, char* out, int base);
char* ultoa(unsigned long value, char* out, int base);

class Print {
public:
    virtual ~Print() {}
    virtual size_t write(uint8_t c) = 0;
    virtual size_t write(const uint8_t* bytes, size_t length) {
        for (size_t i = 0; i < length; i++) write(bytes[i]);
        return length;
    }
    size_t print(const char* text) { return write(reinterpret_cast<const uint8_t*>(text), strlen(text)); }
    size_t print(const __FlashStringHelper* text) { return print(reinterpret_cast<const char*>(text)); }
    size_t print(char c) { return write(static_cast<uint8_t>(c)); }
    size_t print(int n) { return print(static_cast<long>(n)); }
    size_t print(unsigned int n) { return print(static_cast<unsigned long>(n)); }
    size_t print(long n) { return print(std::to_string(n).c_str()); }
    size_t print(unsigned long n) { return print(std::to_string(n).c_str()); }
    template <typename T> size_t println(T value) { return print(value) + print("\r\n"); }
    size_t println() { return print("\r\n"); }
};

class Stream : public Print {
public:
    virtual int available() = 0;
    virtual int read() = 0;
    virtual int peek() = 0;
};

// The test harness's view of the board.
namespace fake {
extern unsigned long now;
extern uint8_t pins[20];
extern int analog[6];
// Every digitalWrite, in order, as (pin, value).
extern std::string pinHistory;
void reset();
}  // namespace fake

class HardwareSerial : public Stream {
public:
    void begin(long) {}
    size_t write(uint8_t c) override {
        output += static_cast<char>(c);
        return 1;
    }
    using Print::write;
    int available() override { return 0; }
    int read() override { return -1; }
    int peek() override { return -1; }
    std::string output;
};
extern HardwareSerial Serial;
