import ArgumentParser
import DTwinApp
import DTwinBridge
import DTwinConfig
import DTwinTwilio
import Foundation
import Logging

struct BridgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bridge",
        abstract: "Run the bridge daemon until SIGTERM or SIGINT.",
        discussion: """
            Subscribes to <prefix>/+/up, <prefix>/+/status and <prefix>/+/sms with a persistent \
            session (client id `clientId`) and delivers every device message to the upstream \
            (upstream.mode: local stores it in the twin table, SQLite or DynamoDB by store.kind; \
            apigw calls an API Gateway URL; lambda calls the Lambda Invoke API, SigV4-signed). \
            Replies go out on <prefix>/<dev>/down, undeliverable messages on \
            <prefix>/bridge/deadletter; <prefix>/bridge/status is `online` while it runs and \
            `offline` after (retained). With the spool on (spool.enabled, the default) a message \
            is on disk before the broker is acknowledged.

            The HTTP server (http.host:http.port, default 127.0.0.1:8080) serves Twilio's webhooks \
            (POST /twilio/sms, /twilio/status, /twilio/ipcommands; signatures checked against \
            http.publicURL), GET /healthz, /readyz and /metrics, and the API under /api (devices, \
            readings, commands, test-event, outbox; Authorization: Bearer $DTWIN_API_TOKEN). \
            Texts on <prefix>/<dev>/sms and alert rules go out as SMS to devices.<dev>.phones, at \
            most twilio.smsPerHour per hour; without TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN that \
            is a dry run (logged, listed in /api/outbox) and webhooks are refused.

            With no configuration file at all it runs on the embedded defaults: broker \
            mqtt://127.0.0.1:1883, prefix dtwin, upstream local, store dtwin.sqlite. On SIGTERM it \
            finishes in-flight work (up to shutdownTimeout), publishes `offline` and exits 0. A \
            broker that is not up yet is waited for.
            """
    )

    @OptionGroup var settings: BrokerOptions

    func run() async throws {
        try await reportingFailures {
            let loaded = try settings.load()
            let configuration = loaded.configuration
            let logger = bootstrapLogging(level: configuration.logLevel.loggerLevel, format: configuration.logFormat)
            for line in StartupSummary.lines(loaded, environment: ProcessInfo.processInfo.environment) { logger.info("\(line)") }
            let application: BridgeApplication
            do {
                application = try BridgeApplication(configuration: configuration, logger: logger)
            } catch let error as ConfigurationError {
                throw CommandFailure.usage("\(error)")
            } catch let error as IncompleteTwilioCredentials {
                throw CommandFailure.usage("\(error)")
            } catch {
                throw CommandFailure.runtime("\(error)")
            }
            do {
                try await application.run()
            } catch {
                throw CommandFailure.runtime("the bridge stopped: \(error)")
            }
        }
    }
}
