#ifndef DTWIN_CMOSQUITTO_SHIM_H
#define DTWIN_CMOSQUITTO_SHIM_H
#include <mosquitto.h>
/* MQTT 5 reason codes and property identifiers (MQTT_RC_*, MQTT_PROP_*). */
#include <mqtt_protocol.h>
#endif
