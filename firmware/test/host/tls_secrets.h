// What broker-config/add-device.sh --arduino writes, for the host tests' TLS build (the CA is a
// stand-in: the scripted modem only compares bytes).
#define DTWIN_TLS 1
#define DTWIN_BROKER_HOST "broker.example.org"
#define DTWIN_BROKER_PORT 8883
#define DTWIN_BROKER_CA_NAME "dtwin broker CA (broker.example.org)"
#define DTWIN_BROKER_CA_PEM \
    "-----BEGIN CERTIFICATE-----\n" \
    "MIIBszCCAVmgAwIBAgIUZHR3aW4gaG9zdCB0ZXN0cyBzdGFuZC1pbjAKBggqhkjO\n" \
    "PQQDAjAiMSAwHgYDVQQDDBdkdHdpbiBicm9rZXIgQ0EgKHRlc3QpMB4XDTI2MTIw\n" \
    "-----END CERTIFICATE-----\n"
