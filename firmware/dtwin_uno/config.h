// Everything that differs from one device to the next, in one place. Each value can also be
// set with -D on the compiler's command line (the simulation build does).
#pragma once

// The device name: [A-Za-z0-9_-], 1 to 64 characters. It is the MQTT client id, the MQTT user
// name (broker-config/add-device.sh NAME) and the topic level: dtwin/<name>/up.
#ifndef DTWIN_DEVICE_NAME
#define DTWIN_DEVICE_NAME "uno1"
#endif
#ifndef DTWIN_TOPIC_PREFIX
#define DTWIN_TOPIC_PREFIX "dtwin"
#endif

// The broker, as the modem reaches it over the cellular network.
#ifndef DTWIN_BROKER_HOST
#define DTWIN_BROKER_HOST "broker.example.org"
#endif
#ifndef DTWIN_BROKER_PORT
#define DTWIN_BROKER_PORT 1883
#endif
// The password add-device.sh printed; "" connects without credentials (development broker).
#ifndef DTWIN_MQTT_PASSWORD
#define DTWIN_MQTT_PASSWORD ""
#endif
// Seconds of silence before the broker gives the device up and publishes its last will.
#ifndef DTWIN_KEEPALIVE_S
#define DTWIN_KEEPALIVE_S 60
#endif

// The SIM's access point name ("super" for Twilio Super SIM).
#ifndef DTWIN_APN
#define DTWIN_APN "super"
#endif

// How often a reading is published, in milliseconds (the PERIOD command changes it).
#ifndef DTWIN_PERIOD_MS
#define DTWIN_PERIOD_MS 60000UL
#endif
// How often the MQTT connection is checked with AT+SMSTATE? between readings.
#ifndef DTWIN_CHECK_MS
#define DTWIN_CHECK_MS 30000UL
#endif

// Pins: DFRobot's SIM7000 shield talks on SoftwareSerial(8, 7) (the UNO receives on D8 and
// sends on D7) and powers the modem up with a pulse on D12. The photoresistor is on A0, the
// LED on D10.
#define PIN_MODEM_RX 8
#define PIN_MODEM_TX 7
#define PIN_MODEM_POWER 12
#define PIN_LED 10
#define PIN_LIGHT A0

// The modem's serial speed (set once with AT+IPR; the sketch tries it at 115200 too) and the
// USB console's.
#define MODEM_BAUD 19200
#define CONSOLE_BAUD 115200
