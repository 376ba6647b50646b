// Everything that differs from one device to the next, in one place. Each value can also be
// set with -D on the compiler's command line (the simulation build does).
#pragma once

// A device's secrets and its broker, written by broker-config/add-device.sh --arduino: the
// device name, its password, the broker's host and TLS port and the broker's CA. The file is
// kept out of git (.gitignore); without it the values below apply. The tests build with
// -DDTWIN_NO_SECRETS_FILE, so that a developer's own file does not change what they check.
#if defined(__has_include) && !defined(DTWIN_NO_SECRETS_FILE)
#if __has_include("dtwin_secrets.h")
#include "dtwin_secrets.h"
#endif
#endif

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

// 1: MQTT over TLS 1.2 through the modem's own TLS, the broker checked against
// DTWIN_BROKER_CA_PEM (the production broker of broker-config/setup.sh, port 8883).
// 0: plain MQTT (the development broker). dtwin_secrets.h sets 1. DTWIN_BROKER_HOST must then be
// the name the broker's certificate carries (setup.sh --host).
#ifndef DTWIN_TLS
#define DTWIN_TLS 0
#endif
#if DTWIN_TLS && !defined(DTWIN_BROKER_CA_PEM)
#error "DTWIN_TLS needs the broker's CA (DTWIN_BROKER_CA_PEM): write dtwin_secrets.h with broker-config/add-device.sh --arduino"
#endif
// The CA's name, for the console when a connection fails.
#ifndef DTWIN_BROKER_CA_NAME
#define DTWIN_BROKER_CA_NAME "(unnamed)"
#endif
// A server for AT+CNTP when the modem's clock is not set (it checks certificate dates).
#ifndef DTWIN_NTP_SERVER
#define DTWIN_NTP_SERVER "pool.ntp.org"
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
