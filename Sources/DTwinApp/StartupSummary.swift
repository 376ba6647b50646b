import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinTwilio
import Foundation

/// The first lines `dtwin bridge` logs: which configuration it loaded and where everything is
/// (absolute paths), so whoever reads the log knows what this process uses before anything
/// else happens. Names and places only: never a password, a token or a URL's query.
public enum StartupSummary {
    public static func lines(
        _ loaded: ConfigurationLoader.Loaded, environment: [String: String],
        workingDirectory: String = FileManager.default.currentDirectoryPath
    ) -> [String] {
        let configuration = loaded.configuration
        func absolute(_ path: String) -> String {
            let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : URL(fileURLWithPath: workingDirectory).appendingPathComponent(path)
            return url.standardizedFileURL.path
        }
        let source =
            loaded.file.map { "configuration \(absolute($0))" }
            ?? "the embedded defaults (no \(ConfigurationLoader.defaultFileName) in \(absolute(".")))"
        let overrides = loaded.overrides.isEmpty ? "" : ", overridden by \(loaded.overrides.joined(separator: ", "))"
        return [
            "dtwin \(DTwinVersion.current) bridge starting with \(source)\(overrides)",
            "broker \(configuration.broker) as client id \(configuration.bridgeClientId), topics under \(configuration.topicPrefix.prefix)/",
            "upstream: \(upstream(configuration))",
            "store: \(store(configuration, absolute: absolute))",
            "spool: "
                + (configuration.spool.enabled
                    ? "\(absolute(configuration.spoolFolder)) (sync \(configuration.spool.sync.rawValue), at most \(configuration.spool.maxBytes / 1_000_000) MB)"
                    : "off (spool.enabled false): undelivered messages are lost if the process dies"),
            "HTTP: http://\(configuration.http.host):\(configuration.http.port) (Twilio webhooks, /healthz, /readyz, /metrics); "
                + (environment["DTWIN_API_TOKEN"].map { !$0.isEmpty } == true
                    ? "API /api enabled (DTWIN_API_TOKEN)" : "API /api disabled: set DTWIN_API_TOKEN to enable it"),
            "Twilio: \(twilio(configuration, environment: environment))",
        ]
    }

    static func upstream(_ configuration: DTwinConfiguration) -> String {
        let settings = configuration.upstream
        switch settings.mode {
        case .local:
            return "local (readings stored in the twin table by this process)"
        case .apigw:
            // The query may hold an API key: the address without it is enough to recognise.
            let address = settings.url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? settings.url
            let hidden = settings.url.contains("?") ? " (query not shown)" : ""
            return "apigw \(settings.method.rawValue) \(address)\(hidden), auth \(settings.auth.rawValue)"
        case .lambda:
            return "lambda function \(settings.function)" + (settings.endpoint.isEmpty ? "" : " at \(settings.endpoint)")
        }
    }

    static func store(_ configuration: DTwinConfiguration, absolute: (String) -> String) -> String {
        let settings = configuration.store
        switch (settings.kind, configuration.upstream.mode) {
        case (.sqlite, .local):
            return "SQLite \(absolute(settings.path)), table \(settings.table)"
        case (.sqlite, _):
            return "none here: upstream.mode \(configuration.upstream.mode) stores readings in the cloud (store.kind dynamodb reads them)"
        case (.dynamodb, _):
            return "DynamoDB table \(settings.table) in \(settings.region)" + (settings.endpoint.isEmpty ? "" : " at \(settings.endpoint)")
        }
    }

    static func twilio(_ configuration: DTwinConfiguration, environment: [String: String]) -> String {
        switch TwilioCredentials.lookup(in: environment) {
        case .found:
            let sender = configuration.twilio.from.isEmpty ? "no sender (set twilio.from)" : "sending from \(configuration.twilio.from)"
            return "account set, \(sender), at most \(configuration.twilio.smsPerHour) SMS an hour; webhook signatures checked"
        case .incomplete(let half):
            return "\(half)"
        case .absent:
            return "dry run (no TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN): SMS are logged, not sent; Twilio's webhooks are refused"
        }
    }
}
