import DTwinContract

/// One scalar key of the configuration: its path, what it accepts, and how it is applied.
/// This table is the single list of keys: the YAML reader, the environment overrides and the
/// unknown-key check all read it.
struct ConfigurationKey: Sendable {
    let path: String
    /// Applies the value; returns why it is invalid, or `nil` when it was applied.
    let apply: @Sendable (inout DTwinConfiguration, String) -> String?

    /// `upstream.url` -> `DTWIN_UPSTREAM_URL`.
    var environmentName: String {
        "DTWIN_" + path.split(separator: ".").map { $0.uppercased() }.joined(separator: "_")
    }
}

extension ConfigurationKey {
    /// A configuration field that a key writes.
    typealias Field<Value> = any WritableKeyPath<DTwinConfiguration, Value> & Sendable

    /// Mappings that hold further keys.
    static let sections: Set<String> = ["upstream", "upstream.retry", "store", "http", "twilio", "spool"]
    /// Keys with a structure of their own, read by `ConfigurationLoader`.
    static let structured: Set<String> = ["devices", "alerts"]

    static let all: [ConfigurationKey] = [
        key("broker") { config, text in
            do throws(InvalidBrokerURL) { config.broker = try BrokerURL(parsing: text) } catch { return error.reason }
            return nil
        },
        string("ca", \.ca),
        string("instance", \.instance),
        string("sharedGroup", \.sharedGroup),
        key("topicPrefix") { config, text in
            do throws(InvalidTopicPrefix) { config.topicPrefix = try TopicTree(prefix: text) } catch { return error.reason }
            return nil
        },
        key("clientId") { config, text in
            guard !text.isEmpty, text.utf8.count <= 65535, !text.contains("+"), !text.contains("#") else {
                return "must be non-empty and free of + and #"
            }
            config.clientId = text
            return nil
        },
        choice("upstream.mode", \.upstream.mode),
        key("upstream.url") { config, text in
            guard let url = ValueParsers.httpURL(text) else { return "must be an http:// or https:// URL" }
            config.upstream.url = url
            return nil
        },
        choice("upstream.method", \.upstream.method),
        choice("upstream.auth", \.upstream.auth),
        string("upstream.function", \.upstream.function),
        url("upstream.endpoint", \.upstream.endpoint),
        duration("upstream.timeout", \.upstream.timeout, atLeast: .milliseconds(10)),
        integer("upstream.concurrency", \.upstream.concurrency, in: 1...1024),
        duration("upstream.retry.initial", \.upstream.retry.initial, atLeast: .milliseconds(1)),
        duration("upstream.retry.max", \.upstream.retry.max, atLeast: .milliseconds(1)),
        duration("upstream.retry.maxAge", \.upstream.retry.maxAge, atLeast: .seconds(1)),
        choice("store.kind", \.store.kind),
        nonEmpty("store.path", \.store.path),
        nonEmpty("store.table", \.store.table),
        nonEmpty("store.region", \.store.region),
        url("store.endpoint", \.store.endpoint),
        nonEmpty("http.host", \.http.host),
        integer("http.port", \.http.port, in: 0...65535),
        url("http.publicURL", \.http.publicURL),
        key("twilio.from") { config, text in
            // Stored as Twilio writes it, so the sender compares equal to the numbers in webhooks.
            guard text.isEmpty || PhoneNumber(text) != nil else { return "must be a phone number like +15017122661 (or empty)" }
            config.twilio.from = PhoneNumber(text)?.rawValue ?? ""
            return nil
        },
        url("twilio.apiBase", \.twilio.apiBase),
        url("twilio.superSimBase", \.twilio.superSimBase),
        integer("twilio.smsPerHour", \.twilio.smsPerHour, in: 0...100_000),
        key("spool.enabled") { config, text in
            guard let enabled = ValueParsers.bool(text) else { return "must be true or false" }
            config.spool.enabled = enabled
            return nil
        },
        nonEmpty("spool.path", \.spool.path),
        choice("spool.sync", \.spool.sync),
        key("spool.maxBytes") { config, text in
            guard let bytes = ValueParsers.byteSize(text), bytes >= 1_000_000 else {
                return "must be a size of at least 1MB, like 256MB"
            }
            config.spool.maxBytes = bytes
            return nil
        },
        key("maxPayload") { config, text in
            guard let bytes = ValueParsers.byteSize(text), (1...268_435_455).contains(bytes) else {
                return "must be a size from 1 byte to 256MiB (MQTT's limit), like 256KiB"
            }
            config.maxPayload = bytes
            return nil
        },
        duration("shutdownTimeout", \.shutdownTimeout, atLeast: .zero),
        choice("logLevel", \.logLevel),
        choice("logFormat", \.logFormat),
    ]

    static let byPath: [String: ConfigurationKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.path, $0) })

    // MARK: key builders

    private static func key(
        _ path: String, _ apply: @escaping @Sendable (inout DTwinConfiguration, String) -> String?
    ) -> ConfigurationKey {
        ConfigurationKey(path: path, apply: apply)
    }

    private static func string(_ path: String, _ field: Field<String>) -> ConfigurationKey {
        key(path) { config, text in
            config[keyPath: field] = text
            return nil
        }
    }

    private static func nonEmpty(_ path: String, _ field: Field<String>) -> ConfigurationKey {
        key(path) { config, text in
            guard !text.isEmpty else { return "must not be empty" }
            config[keyPath: field] = text
            return nil
        }
    }

    private static func url(_ path: String, _ field: Field<String>) -> ConfigurationKey {
        key(path) { config, text in
            guard let url = ValueParsers.httpURL(text) else { return "must be an http:// or https:// URL (or empty)" }
            config[keyPath: field] = url
            return nil
        }
    }

    private static func integer(
        _ path: String, _ field: Field<Int>, in range: ClosedRange<Int>
    ) -> ConfigurationKey {
        key(path) { config, text in
            guard let value = ValueParsers.int(text, in: range) else {
                return "must be a whole number from \(range.lowerBound) to \(range.upperBound)"
            }
            config[keyPath: field] = value
            return nil
        }
    }

    private static func duration(
        _ path: String, _ field: Field<Duration>, atLeast minimum: Duration
    ) -> ConfigurationKey {
        key(path) { config, text in
            guard let value = ValueParsers.duration(text), value >= minimum else {
                return "must be a duration like 250ms, 10s, 5m or 1h (at least \(minimum))"
            }
            config[keyPath: field] = value
            return nil
        }
    }

    private static func choice<T: RawRepresentable & CaseIterable & Sendable>(
        _ path: String, _ field: Field<T>
    ) -> ConfigurationKey where T.RawValue == String {
        key(path) { config, text in
            guard let value = T.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }) else {
                return "must be one of \(T.allCases.map(\.rawValue).joined(separator: ", "))"
            }
            config[keyPath: field] = value
            return nil
        }
    }
}
