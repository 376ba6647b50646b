// dtwin_uno: an Arduino UNO with a DFRobot SIM7000 shield as a dtwin device.
//
// It reads the photoresistor on A0 and publishes `sim-<dev> data <adc>` on dtwin/<dev>/up
// through the modem's own MQTT client (AT+SM... commands), keeps a retained `online` on
// dtwin/<dev>/status (the broker publishes `offline` when the device vanishes), and acts on
// the commands the bridge publishes on dtwin/<dev>/down: LIG lights the LED on D10, ACK turns
// it off. Everything that differs per device is in config.h; firmware/README.md has the wiring.
#include <SoftwareSerial.h>
#include "at_modem.h"
#include "config.h"
#include "device.h"

static SoftwareSerial modemSerial(PIN_MODEM_RX, PIN_MODEM_TX);
static AtModem modem(modemSerial);

static void setModemBaud(long baud) { modemSerial.begin(baud); }

static Device device(modem, Serial, setModemBaud);

void setup() {
    Serial.begin(CONSOLE_BAUD);
    modemSerial.begin(MODEM_BAUD);
    device.begin();
}

void loop() { device.loop(); }
