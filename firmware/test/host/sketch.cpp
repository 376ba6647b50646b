// The unmodified sketch file, compiled as the C++ it is (the Arduino build adds only the
// Arduino.h include and prototypes, which it already has).
#include <Arduino.h>
#include "../../dtwin_uno/dtwin_uno.ino"
