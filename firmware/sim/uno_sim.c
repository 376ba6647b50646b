// Runs the real compiled sketch (.elf) on a simulated ATmega328P (simavr) wired like the UNO
// with a DFRobot SIM7000 shield:
//
//   - SoftwareSerial on D7 (UNO transmits) and D8 (UNO receives) at 19200 baud, bit by bit
//     with cycle timers, to a serial device: the fake modem's pty (--modem PATH);
//   - the hardware UART (the USB console) to a file (--console FILE);
//   - A0 at a voltage (--a0 MILLIVOLTS, default 2500; "A0 <mV>" lines on stdin change it);
//   - D10 (the LED) and D12 (the modem's power key) reported on stdout as "D10 1" / "D10 0".
//
// It runs at real time (simavr alone runs several times faster, which would make the
// firmware's timeouts shorter than the fake modem's answers) and stops after --seconds.
//
//   uno_sim FIRMWARE.elf --modem PTY [--console FILE] [--a0 MV] [--seconds N]
//
// Prints D10/D12 changes on stdout, and "stack lowest SP 0x...." whenever the stack reaches a
// new depth (the test turns it into the headroom above the static data).
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <avr_adc.h>
#include <avr_ioport.h>
#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_elf.h>

#define FREQUENCY 16000000.0
#define BAUD 19200.0
static const double kBit = FREQUENCY / BAUD;  // cycles per bit, 833.3

static avr_t* avr;
static int modem_fd = -1;
static FILE* console;

// --- D7 -> modem: decode the UNO's SoftwareSerial output --------------------------------

static int tx_level = 1;           // the line idles high
static int tx_receiving = 0;
static avr_cycle_count_t tx_start;  // cycle of the start bit's falling edge
static int tx_bit;
static uint8_t tx_byte;

static avr_cycle_count_t sample_tx(avr_t* avr, avr_cycle_count_t when, void* param) {
    (void)avr, (void)when, (void)param;
    if (tx_bit < 8) {
        if (tx_level) tx_byte |= (uint8_t)(1u << tx_bit);
        tx_bit++;
        return tx_start + (avr_cycle_count_t)((1.5 + tx_bit) * kBit);
    }
    // The stop bit: a low one is a framing error (the byte is dropped, as a UART would).
    if (tx_level && modem_fd >= 0) {
        ssize_t written = write(modem_fd, &tx_byte, 1);
        (void)written;
    }
    tx_receiving = 0;
    return 0;
}

static void d7_changed(struct avr_irq_t* irq, uint32_t value, void* param) {
    (void)irq, (void)param;
    tx_level = value ? 1 : 0;
    if (!tx_receiving && !tx_level) {
        tx_receiving = 1;
        tx_start = avr->cycle;
        tx_bit = 0;
        tx_byte = 0;
        avr_cycle_timer_register(avr, (avr_cycle_count_t)(1.5 * kBit), sample_tx, NULL);
    }
}

// --- modem -> D8: drive the UNO's SoftwareSerial input ------------------------------------

static avr_irq_t* d8;
static uint8_t rx_queue[4096];
static size_t rx_head, rx_tail;  // bytes waiting: rx_queue[rx_head..rx_tail)
static int rx_sending = 0;
static avr_cycle_count_t rx_start;
static int rx_bit;  // 0 start, 1..8 data, 9 stop

static avr_cycle_count_t drive_rx(avr_t* avr, avr_cycle_count_t when, void* param) {
    (void)avr, (void)when, (void)param;
    const uint8_t byte = rx_queue[rx_head];
    int level;
    if (rx_bit == 0) level = 0;
    else if (rx_bit <= 8) level = (byte >> (rx_bit - 1)) & 1;
    else level = 1;
    avr_raise_irq(d8, (uint32_t)level);
    rx_bit++;
    if (rx_bit <= 9) return rx_start + (avr_cycle_count_t)(rx_bit * kBit);
    // A whole stop bit, then the next byte back to back, as a modem sends a line.
    rx_head++;
    if (rx_head < rx_tail) {
        rx_bit = 0;
        rx_start += (avr_cycle_count_t)(10 * kBit);
        return rx_start;
    }
    rx_sending = 0;
    return 0;
}

static void start_next_rx(void) {
    if (rx_sending || rx_head == rx_tail) return;
    rx_sending = 1;
    rx_bit = 0;
    // The stop bit lasts a whole bit: start the next byte one bit after it began.
    rx_start = avr->cycle + (avr_cycle_count_t)kBit;
    avr_cycle_timer_register(avr, (avr_cycle_count_t)kBit, drive_rx, NULL);
}

static void read_modem(void) {
    if (modem_fd < 0) return;
    if (!rx_sending && rx_head > 0) {
        memmove(rx_queue, rx_queue + rx_head, rx_tail - rx_head);
        rx_tail -= rx_head;
        rx_head = 0;
    }
    if (rx_tail >= sizeof rx_queue) return;  // full: the rest waits in the pty
    ssize_t n = read(modem_fd, rx_queue + rx_tail, sizeof rx_queue - rx_tail);
    if (n > 0) rx_tail += (size_t)n;
    start_next_rx();
}

// --- the console, the LED, the power key ---------------------------------------------------

static void console_byte(struct avr_irq_t* irq, uint32_t value, void* param) {
    (void)irq, (void)param;
    fputc((int)value, console);
    if (value == '\n') fflush(console);
}

static void pin_changed(struct avr_irq_t* irq, uint32_t value, void* param) {
    (void)irq;
    static int last[2] = {-1, -1};
    const int which = (int)(intptr_t)param;
    if (last[which] == (int)value) return;
    last[which] = (int)value;
    printf("D%d %u\n", which == 0 ? 10 : 12, value ? 1u : 0u);
    fflush(stdout);
}

static uint32_t a0_millivolts = 2500;

static void adc_trigger(struct avr_irq_t* irq, uint32_t value, void* param) {
    (void)irq, (void)value, (void)param;
    avr_raise_irq(avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0), a0_millivolts);
}

static void read_control(void) {
    static char line[64];
    static size_t length;
    char c;
    while (read(STDIN_FILENO, &c, 1) == 1) {
        if (c != '\n' && length < sizeof line - 1) {
            line[length++] = c;
            continue;
        }
        line[length] = '\0';
        length = 0;
        unsigned mv;
        if (sscanf(line, "A0 %u", &mv) == 1 && mv <= 5000) a0_millivolts = mv;
    }
}

static double wall_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void usage(const char* program) {
    fprintf(stderr, "usage: %s FIRMWARE.elf --modem PTY [--console FILE] [--a0 MILLIVOLTS] [--seconds N]\n", program);
    exit(2);
}

int main(int argc, char** argv) {
    const char *firmware_path = NULL, *modem_path = NULL, *console_path = NULL;
    double seconds = 60;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--modem") && i + 1 < argc) modem_path = argv[++i];
        else if (!strcmp(argv[i], "--console") && i + 1 < argc) console_path = argv[++i];
        else if (!strcmp(argv[i], "--a0") && i + 1 < argc) a0_millivolts = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (argv[i][0] != '-' && !firmware_path) firmware_path = argv[i];
        else usage(argv[0]);
    }
    if (!firmware_path || !modem_path) usage(argv[0]);

    modem_fd = open(modem_path, O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (modem_fd < 0) {
        fprintf(stderr, "uno_sim: cannot open the modem's serial device %s: %s\n", modem_path, strerror(errno));
        return 1;
    }
    struct termios raw;
    if (tcgetattr(modem_fd, &raw) == 0) {
        cfmakeraw(&raw);
        tcsetattr(modem_fd, TCSANOW, &raw);
    }
    console = console_path ? fopen(console_path, "a") : stderr;
    if (!console) {
        fprintf(stderr, "uno_sim: cannot write %s: %s\n", console_path, strerror(errno));
        return 1;
    }
    fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);

    elf_firmware_t firmware;
    memset(&firmware, 0, sizeof firmware);
    if (elf_read_firmware(firmware_path, &firmware) != 0) {
        fprintf(stderr, "uno_sim: cannot read %s\n", firmware_path);
        return 1;
    }
    strcpy(firmware.mmcu, "atmega328p");
    firmware.frequency = (uint32_t)FREQUENCY;
    avr = avr_make_mcu_by_name(firmware.mmcu);
    if (!avr) {
        fprintf(stderr, "uno_sim: simavr has no atmega328p\n");
        return 1;
    }
    avr_init(avr);
    avr_load_firmware(avr, &firmware);
    avr->avcc = avr->vcc = avr->aref = 5000;

    // The console: our own file, not simavr's line printer.
    uint32_t flags = 0;
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~(uint32_t)AVR_UART_FLAG_STDIO;
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), console_byte, NULL);

    // D7 = PD7 (out), D8 = PB0 (in), D10 = PB2, D12 = PB4.
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 7), d7_changed, NULL);
    d8 = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('B'), 0);
    avr_raise_irq(d8, 1);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('B'), 2), pin_changed, (void*)0);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('B'), 4), pin_changed, (void*)1);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_OUT_TRIGGER), adc_trigger, NULL);

    const double started = wall_seconds();
    unsigned long steps = 0;
    // The stack's deepest point: the lowest SP seen (SP below the RAM's start is the reset's
    // zero, before the start-up code sets it), on stdout each time it goes lower.
    unsigned lowest_sp = 0xffff, reported_sp = 0xffff;
    for (;;) {
        const int state = avr_run(avr);
        if (state == cpu_Done || state == cpu_Crashed) {
            fprintf(stderr, "uno_sim: the firmware %s\n", state == cpu_Done ? "stopped" : "crashed");
            return 1;
        }
        const unsigned sp = avr->data[R_SPL] | (unsigned)avr->data[R_SPH] << 8;
        if (sp >= 0x100 && sp < lowest_sp) lowest_sp = sp;
        if (++steps % 2000 != 0) continue;
        if (lowest_sp != reported_sp) {
            reported_sp = lowest_sp;
            printf("stack lowest SP 0x%04x\n", lowest_sp);
            fflush(stdout);
        }
        read_modem();
        read_control();
        // Real time: wait while the simulated clock is ahead of the wall clock.
        const double simulated = (double)avr->cycle / FREQUENCY;
        const double elapsed = wall_seconds() - started;
        if (elapsed >= seconds) break;
        if (simulated > elapsed + 0.002) usleep((useconds_t)((simulated - elapsed) * 1e6));
    }
    fflush(console);
    return 0;
}
