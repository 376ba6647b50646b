#ifndef DTWIN_CMOSQUITTO_SHIM_H
#define DTWIN_CMOSQUITTO_SHIM_H
#include <mosquitto.h>
#endif
