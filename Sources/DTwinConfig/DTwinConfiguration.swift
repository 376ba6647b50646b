import DTwinContract

/// The whole configuration of dtwin (README: "Configuration"). The defaults here are the embedded
/// defaults the bridge runs on when there is no file at all.
public struct DTwinConfiguration: Sendable, Equatable {
    public enum UpstreamMode: String, Sendable, Equatable, CaseIterable {
        case local, apigw, lambda
    }

    public enum HTTPMethod: String, Sendable, Equatable, CaseIterable {
        case get = "GET"
        case post = "POST"
    }

    /// How `apigw` requests prove who sends them.
    public enum UpstreamAuth: String, Sendable, Equatable, CaseIterable {
        /// Unsigned: an open API, or one that checks a key in `upstream.url`.
        case none
        /// Signature Version 4 for `execute-api` with the standard AWS credentials, for an
        /// `AWS_IAM` route such as the cloud stack's `POST /bridge` (cloud/template.yaml).
        case iam
    }

    public enum StoreKind: String, Sendable, Equatable, CaseIterable {
        case sqlite, dynamodb
    }

    public enum LogFormat: String, Sendable, Equatable, CaseIterable {
        /// swift-log's lines: `2026-12-01T12:00:00+0000 info dtwin: [DTwinBridge] message key=value`.
        case text
        /// One JSON object per line (``JSONLogHandler`` in DTwinApp).
        case json
    }

    public enum LogLevel: String, Sendable, Equatable, CaseIterable {
        case trace, debug, info, notice, warning, error, critical
    }

    public struct Retry: Sendable, Equatable {
        /// The first retry delay; each later one doubles, with jitter, up to `max`.
        public var initial: Duration = .milliseconds(200)
        public var max: Duration = .seconds(30)
        /// A message still undelivered this long after it arrived goes to the dead letter topic.
        public var maxAge: Duration = .seconds(24 * 3600)

        public init(initial: Duration = .milliseconds(200), max: Duration = .seconds(30), maxAge: Duration = .seconds(24 * 3600)) {
            self.initial = initial
            self.max = max
            self.maxAge = maxAge
        }
    }

    public struct Upstream: Sendable, Equatable {
        public var mode: UpstreamMode = .local
        public var url: String = ""
        public var method: HTTPMethod = .get
        public var auth: UpstreamAuth = .none
        public var function: String = ""
        public var endpoint: String = ""
        public var timeout: Duration = .seconds(10)
        /// Upstream requests in flight at once, across devices (one at a time per device).
        public var concurrency: Int = 32
        public var retry = Retry()
    }

    public struct Store: Sendable, Equatable {
        public var kind: StoreKind = .sqlite
        public var path: String = "dtwin.sqlite"
        public var table: String = "digitaltwin"
        public var region: String = "us-west-2"
        public var endpoint: String = ""
    }

    public struct HTTP: Sendable, Equatable {
        public var host: String = "127.0.0.1"
        public var port: Int = 8080
        public var publicURL: String = ""
    }

    public struct Twilio: Sendable, Equatable {
        public var from: String = ""
        public var apiBase: String = "https://api.twilio.com"
        public var superSimBase: String = "https://supersim.twilio.com"
        public var smsPerHour: Int = 30
    }

    public struct Device: Sendable, Equatable {
        public var phones: [String] = []
        public var cellular: Bool = false
        /// `local` mode: a fixed reply published on the device's `down` topic.
        public var reply: String = ""
        /// The desired keys this device's twin takes and their commands (`nil`: the UNO
        /// sketch's, ``TwinSchema/uno``).
        public var twin: TwinSchema?
        /// How long a desired key waits for the device before it is marked failed (`nil`: 24h).
        public var twinTimeout: Duration?
        public init(phones: [String] = [], cellular: Bool = false, reply: String = "") {
            self.phones = phones
            self.cellular = cellular
            self.reply = reply
        }

        /// The twin schema this device's settings make.
        public var twinSchema: TwinSchema {
            var schema = twin ?? .uno
            if let twinTimeout {
                let (seconds, attoseconds) = twinTimeout.components
                schema.pendingTimeoutMillis = seconds * 1000 + attoseconds / 1_000_000_000_000_000
            }
            return schema
        }
    }

    public struct AlertRule: Sendable, Equatable {
        /// A device name, or `*` for every device.
        public var device: String = "*"
        public var below: Double?
        public var above: Double?
        public var text: String = "{device}: {value}"
        public var cooldown: Duration = .seconds(600)
        public init() {}
    }

    public enum SpoolSync: String, Sendable, Equatable, CaseIterable {
        /// A commit survives a crash or SIGKILL of the bridge (SQLite `synchronous=NORMAL`).
        case normal
        /// A commit survives a power cut too: one fsync per message (`synchronous=FULL`).
        case full
    }

    public struct Spool: Sendable, Equatable {
        /// `false`: messages wait in memory only, and a crash loses the ones not yet delivered.
        public var enabled: Bool = true
        /// The folder holding the spool's SQLite file (`spool.sqlite`).
        public var path: String = "dtwin-spool"
        public var maxBytes: Int = 256_000_000
        public var sync: SpoolSync = .normal
    }

    public var broker = BrokerURL(host: "127.0.0.1", port: 1883)
    /// A CA file for `mqtts://` brokers; empty uses the system trust store.
    public var ca: String = ""
    public var topicPrefix = try! TopicTree(prefix: TopicTree.defaultPrefix)
    public var clientId: String = "dtwin-bridge"
    public var upstream = Upstream()
    public var store = Store()
    public var http = HTTP()
    public var twilio = Twilio()
    public var devices: [DeviceName: Device] = [:]
    public var alerts: [AlertRule] = []
    public var spool = Spool()
    /// Device payloads larger than this are dead-lettered instead of forwarded.
    public var maxPayload: Int = 256 * 1024
    /// How long a SIGTERM may take: in-flight deliveries get this long to finish.
    public var shutdownTimeout: Duration = .seconds(10)
    public var logLevel: LogLevel = .info
    public var logFormat: LogFormat = .text
    /// Several bridges on one broker (README: "Several instances"): a name for each, and the
    /// group of their `$share/<group>/…` subscriptions. Empty: one bridge.
    public var instance: String = ""
    public var sharedGroup: String = ""

    public init() {}

    /// The client id this bridge connects with: `clientId`, and `-<instance>` when it is one of
    /// several, so that each keeps its own persistent session on the broker.
    public var bridgeClientId: String { instance.isEmpty ? clientId : "\(clientId)-\(instance)" }

    /// The folder of this bridge's spool: `spool.path`, and `-<instance>` when it is one of
    /// several, so that instances sharing one working folder never share a spool.
    public var spoolFolder: String {
        let path = spool.path.trimmingTrailingSlashes()
        return instance.isEmpty ? path : "\(path)-\(instance)"
    }
}
