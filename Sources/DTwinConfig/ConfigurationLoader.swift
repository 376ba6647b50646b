import DTwinContract
import Foundation
import Yams

/// Reads the configuration: embedded defaults, then the YAML file, then `DTWIN_*` environment
/// variables (README: "Configuration"). Unknown keys and bad values are errors that name the key.
public enum ConfigurationLoader {
    /// The file read when neither `--config` nor `DTWIN_CONFIG` names one.
    public static let defaultFileName = "dtwin.yaml"

    /// Environment variables that start with `DTWIN_` but are not configuration keys.
    static let otherVariables: Set<String> = ["DTWIN_CONFIG", "DTWIN_API_TOKEN"]

    public struct Loaded: Sendable {
        public var configuration: DTwinConfiguration
        /// The file that was read, if any.
        public var file: String?
        /// Things worth a log line that are not errors (an unknown `DTWIN_` variable, …).
        public var warnings: [String]
        /// The `DTWIN_*` variables that set keys (names only: some hold secrets).
        public var overrides: [String]
    }

    /// Loads from `path` (an explicit `--config`), else `DTWIN_CONFIG`, else `dtwin.yaml` in the
    /// working folder if it exists, else the embedded defaults. A file named explicitly must exist.
    public static func load(path: String?, environment: [String: String]) throws(ConfigurationError) -> Loaded {
        let explicit = path ?? environment["DTWIN_CONFIG"].nonEmpty
        let file = explicit ?? defaultFileName
        guard FileManager.default.fileExists(atPath: file) else {
            if let explicit {
                throw ConfigurationError(key: "config", message: "the file \(explicit.debugDescription) does not exist")
            }
            return try load(yaml: nil, source: nil, environment: environment)
        }
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ConfigurationError(key: "config", message: "cannot read \(file.debugDescription): \(error.localizedDescription)")
        }
        var loaded = try load(yaml: text, source: file, environment: environment)
        loaded.file = file
        return loaded
    }

    /// Loads from YAML text (or none) and the environment. `source` names the text in errors.
    public static func load(yaml: String?, source: String?, environment: [String: String]) throws(ConfigurationError)
        -> Loaded
    {
        var reader = Reader(configuration: DTwinConfiguration(), fileName: source ?? "configuration")
        if let yaml {
            let node: Node?
            do {
                node = try Yams.compose(yaml: yaml)
            } catch {
                throw ConfigurationError(key: "config", message: "not valid YAML: \(error)", source: source)
            }
            if let node, !isNull(node) { try reader.readMapping(node, path: []) }
        }
        let (warnings, overrides) = try reader.readEnvironment(environment)
        try validate(reader.configuration)
        return Loaded(configuration: reader.configuration, file: nil, warnings: warnings, overrides: overrides)
    }

    /// Rules that involve more than one key.
    static func validate(_ config: DTwinConfiguration) throws(ConfigurationError) {
        if config.upstream.mode == .apigw && config.upstream.url.isEmpty {
            throw ConfigurationError(key: "upstream.url", message: "is required when upstream.mode is apigw (the API Gateway invoke URL)")
        }
        if config.upstream.auth == .iam && config.upstream.mode != .apigw {
            throw ConfigurationError(
                key: "upstream.auth",
                message:
                    "iam signs apigw requests; upstream.mode \(config.upstream.mode) \(config.upstream.mode == .lambda ? "is always signed" : "sends nothing upstream")"
            )
        }
        if config.upstream.mode == .lambda && config.upstream.function.isEmpty {
            throw ConfigurationError(key: "upstream.function", message: "is required when upstream.mode is lambda (a function name or ARN)")
        }
        // Both become parts of names: a topic level (`$share/<group>/`, `bridge/status/<instance>`),
        // a client id and a folder; so the device names' rules.
        for (key, value) in [("instance", config.instance), ("sharedGroup", config.sharedGroup)] where !value.isEmpty {
            do { _ = try DeviceName(validating: value) } catch {
                throw ConfigurationError(key: key, message: "\(value.debugDescription) \(error.reason)")
            }
        }
        if !config.sharedGroup.isEmpty && config.instance.isEmpty {
            throw ConfigurationError(
                key: "instance",
                message: "is required with sharedGroup: each bridge of the group needs a name of its own (its client id, session and spool)")
        }
        if config.upstream.retry.initial > config.upstream.retry.max {
            throw ConfigurationError(key: "upstream.retry.initial", message: "must not be longer than upstream.retry.max")
        }
        if !config.ca.isEmpty && !config.broker.tls {
            throw ConfigurationError(key: "ca", message: "is set, but the broker URL is not mqtts://")
        }
    }

    static func isNull(_ node: Node) -> Bool {
        guard let scalar = node.scalar, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }
}

/// Walks YAML nodes and environment variables into a configuration.
private struct Reader {
    var configuration: DTwinConfiguration
    let fileName: String

    func location(_ node: Node) -> String {
        guard let mark = node.mark else { return fileName }
        return "\(fileName) line \(mark.line)"
    }

    mutating func readMapping(_ node: Node, path: [String]) throws(ConfigurationError) {
        let here = path.isEmpty ? "config" : path.joined(separator: ".")
        guard let mapping = node.mapping else {
            throw ConfigurationError(key: here, message: "must be a mapping of keys to values", source: location(node))
        }
        for (keyNode, value) in mapping {
            guard let name = keyNode.scalar?.string else {
                throw ConfigurationError(key: here, message: "has a key that is not a plain name", source: location(keyNode))
            }
            let dotted = (path + [name]).joined(separator: ".")
            if dotted == "devices" {
                try readDevices(value)
            } else if dotted == "alerts" {
                try readAlerts(value)
            } else if ConfigurationKey.sections.contains(dotted) {
                if !ConfigurationLoader.isNull(value) { try readMapping(value, path: path + [name]) }
            } else if let key = ConfigurationKey.byPath[dotted] {
                try apply(key, scalar(value, key: dotted), source: location(value))
            } else {
                throw ConfigurationError(key: dotted, message: "unknown key\(Self.suggestion(for: dotted))", source: location(keyNode))
            }
        }
    }

    mutating func apply(_ key: ConfigurationKey, _ text: String, source: String) throws(ConfigurationError) {
        if let problem = key.apply(&configuration, text) {
            throw ConfigurationError(key: key.path, message: problem, source: source)
        }
    }

    func scalar(_ node: Node, key: String) throws(ConfigurationError) -> String {
        guard let scalar = node.scalar else {
            throw ConfigurationError(key: key, message: "must be a single value, not a list or mapping", source: location(node))
        }
        return ConfigurationLoader.isNull(node) ? "" : scalar.string
    }

    // MARK: devices and alerts

    mutating func readDevices(_ node: Node) throws(ConfigurationError) {
        if ConfigurationLoader.isNull(node) { return }
        guard let mapping = node.mapping else {
            throw ConfigurationError(key: "devices", message: "must map device names to their settings", source: location(node))
        }
        var devices: [DeviceName: DTwinConfiguration.Device] = [:]
        for (keyNode, value) in mapping {
            let text = keyNode.scalar?.string ?? ""
            let name: DeviceName
            do { name = try DeviceName(validating: text) } catch {
                throw ConfigurationError(key: "devices.\(text)", message: error.description, source: location(keyNode))
            }
            var device = DTwinConfiguration.Device()
            if !ConfigurationLoader.isNull(value) {
                guard let fields = value.mapping else {
                    throw ConfigurationError(key: "devices.\(name)", message: "must be a mapping (phones, cellular, reply)", source: location(value))
                }
                for (fieldNode, fieldValue) in fields {
                    let field = fieldNode.scalar?.string ?? ""
                    let key = "devices.\(name).\(field)"
                    switch field {
                    case "phones":
                        device.phones = try phoneList(fieldValue, key: key)
                    case "cellular":
                        guard let bool = ValueParsers.bool(try scalar(fieldValue, key: key)) else {
                            throw ConfigurationError(key: key, message: "must be true or false", source: location(fieldValue))
                        }
                        device.cellular = bool
                    case "reply":
                        device.reply = try scalar(fieldValue, key: key)
                    case "twin":
                        device.twin = try twinSchema(fieldValue, key: key)
                    case "twinTimeout":
                        guard let duration = ValueParsers.duration(try scalar(fieldValue, key: key)), duration >= .seconds(1) else {
                            throw ConfigurationError(key: key, message: "must be a duration of at least 1s, like 24h", source: location(fieldValue))
                        }
                        device.twinTimeout = duration
                    default:
                        throw ConfigurationError(
                            key: key, message: "unknown key; a device has phones, cellular, reply, twin and twinTimeout",
                            source: location(fieldNode))
                    }
                }
            }
            devices[name] = device
        }
        configuration.devices = devices
    }

    /// `devices.<dev>.twin`: each desired key and the command it becomes:
    /// `led: {on: LIG, off: ACK}` (a boolean), `period: {command: "PERIOD {value}", min: 1,
    /// max: 86400}` (a whole number), `text: {command: "SAY {value}", type: text}`.
    func twinSchema(_ node: Node, key: String) throws(ConfigurationError) -> TwinSchema {
        let shape = #"must map desired keys to commands, like led: {on: LIG, off: ACK} or period: {command: "PERIOD {value}", min: 1, max: 86400}"#
        guard let mapping = node.mapping, !mapping.isEmpty else { throw ConfigurationError(key: key, message: shape, source: location(node)) }
        var keys: [String: TwinSchema.Key] = [:]
        for (nameNode, entry) in mapping {
            let name = nameNode.scalar?.string ?? ""
            let entryKey = "\(key).\(name)"
            guard (1...64).contains(name.count), name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw ConfigurationError(key: entryKey, message: "a desired key is 1 to 64 letters, digits or _", source: location(nameNode))
            }
            guard let fields = entry.mapping else { throw ConfigurationError(key: entryKey, message: shape, source: location(entry)) }
            var values: [String: String] = [:]
            for (fieldNode, value) in fields { values[fieldNode.scalar?.string ?? ""] = try scalar(value, key: entryKey) }
            func command(_ text: String) throws(ConfigurationError) -> String {
                do { return try DeviceCommand(validating: text).text } catch {
                    throw ConfigurationError(key: entryKey, message: "\(error)", source: location(entry))
                }
            }
            if let on = values["on"], let off = values["off"], values.count == 2 {
                keys[name] = .bool(on: try command(on), off: try command(off))
            } else if let template = values["command"], template.contains("{value}"),
                Set(values.keys).isSubset(of: ["command", "type", "min", "max"])
            {
                _ = try command(template.replacingOccurrences(of: "{value}", with: "0"))
                switch values["type"] ?? "integer" {
                case "integer":
                    guard let min = Int(values["min"] ?? "-1000000000"), let max = Int(values["max"] ?? "1000000000"), min <= max else {
                        throw ConfigurationError(key: entryKey, message: "min and max must be whole numbers, min <= max", source: location(entry))
                    }
                    keys[name] = .integer(template, range: min...max)
                case "text" where values["min"] == nil && values["max"] == nil:
                    keys[name] = .text(template)
                default:
                    throw ConfigurationError(key: entryKey, message: "type must be integer (with min, max) or text", source: location(entry))
                }
            } else {
                throw ConfigurationError(key: entryKey, message: shape, source: location(entry))
            }
        }
        return TwinSchema(keys: keys)
    }

    func phoneList(_ node: Node, key: String) throws(ConfigurationError) -> [String] {
        let items: [Node]
        if let sequence = node.sequence { items = Array(sequence) } else { items = [node] }
        var phones: [String] = []
        for item in items {
            let phone = try scalar(item, key: key)
            guard PhoneNumber(phone) != nil else {
                throw ConfigurationError(
                    key: key,
                    message:
                        "\(phone.debugDescription) is not a phone number in E.164 form, like +12065550100 (spaces, dashes and parentheses may separate the digits)",
                    source: location(item))
            }
            phones.append(phone)
        }
        return phones
    }

    mutating func readAlerts(_ node: Node) throws(ConfigurationError) {
        if ConfigurationLoader.isNull(node) { return }
        guard let sequence = node.sequence else {
            throw ConfigurationError(key: "alerts", message: "must be a list of rules", source: location(node))
        }
        var rules: [DTwinConfiguration.AlertRule] = []
        for (index, item) in sequence.enumerated() {
            let base = "alerts[\(index)]"
            guard let fields = item.mapping else {
                throw ConfigurationError(key: base, message: "must be a mapping (device, below or above, text, cooldown)", source: location(item))
            }
            var rule = DTwinConfiguration.AlertRule()
            for (fieldNode, value) in fields {
                let field = fieldNode.scalar?.string ?? ""
                let key = "\(base).\(field)"
                let text = try scalar(value, key: key)
                switch field {
                case "device":
                    guard text == "*" || DeviceName(text) != nil else {
                        throw ConfigurationError(key: key, message: "must be * or a valid device name", source: location(value))
                    }
                    rule.device = text
                case "below", "above":
                    guard let number = ValueParsers.number(text) else {
                        throw ConfigurationError(key: key, message: "must be a number", source: location(value))
                    }
                    if field == "below" { rule.below = number } else { rule.above = number }
                case "text":
                    guard !text.isEmpty else { throw ConfigurationError(key: key, message: "must not be empty", source: location(value)) }
                    rule.text = text
                case "cooldown":
                    guard let duration = ValueParsers.duration(text) else {
                        throw ConfigurationError(key: key, message: "must be a duration like 10m", source: location(value))
                    }
                    rule.cooldown = duration
                default:
                    throw ConfigurationError(
                        key: key, message: "unknown key; a rule has device, below, above, text and cooldown", source: location(fieldNode))
                }
            }
            if rule.below == nil && rule.above == nil {
                throw ConfigurationError(key: base, message: "needs a threshold: below or above", source: location(item))
            }
            rules.append(rule)
        }
        configuration.alerts = rules
    }

    // MARK: environment

    /// Applies `DTWIN_*` overrides; returns warnings for variables that match no key.
    /// Applies the `DTWIN_*` variables; returns the warnings and the names of those applied.
    mutating func readEnvironment(_ environment: [String: String]) throws(ConfigurationError) -> (warnings: [String], applied: [String]) {
        var applied: [String] = []
        for key in ConfigurationKey.all {
            guard let value = environment[key.environmentName] else { continue }
            try apply(key, value, source: "environment variable \(key.environmentName)")
            applied.append(key.environmentName)
        }
        // Devices and alerts have no fixed key paths; their variables hold the whole YAML (or JSON) value.
        if let text = environment["DTWIN_DEVICES"] {
            try readDevices(try Self.compose(text, variable: "DTWIN_DEVICES"))
            applied.append("DTWIN_DEVICES")
        }
        if let text = environment["DTWIN_ALERTS"] {
            try readAlerts(try Self.compose(text, variable: "DTWIN_ALERTS"))
            applied.append("DTWIN_ALERTS")
        }
        let known = Set(ConfigurationKey.all.map(\.environmentName)).union(ConfigurationLoader.otherVariables)
            .union(["DTWIN_DEVICES", "DTWIN_ALERTS"])
        let warnings = environment.keys.filter { $0.hasPrefix("DTWIN_") && !known.contains($0) }.sorted().map {
            "environment variable \($0) is not a configuration key; it is ignored\(Self.suggestion(forVariable: $0))"
        }
        return (warnings, applied.sorted())
    }

    static func compose(_ text: String, variable: String) throws(ConfigurationError) -> Node {
        do {
            return try Yams.compose(yaml: text) ?? Node("")
        } catch {
            throw ConfigurationError(key: variable, message: "must be YAML or JSON: \(error)")
        }
    }

    // MARK: suggestions

    static func suggestion(for dotted: String) -> String {
        let candidates = ConfigurationKey.all.map(\.path) + Array(ConfigurationKey.sections) + Array(ConfigurationKey.structured)
        guard let best = closest(dotted, in: candidates) else { return "" }
        return "; did you mean \(best)?"
    }

    static func suggestion(forVariable name: String) -> String {
        guard let best = closest(name, in: ConfigurationKey.all.map(\.environmentName)) else { return "" }
        return " (did you mean \(best)?)"
    }

    /// Long names tolerate more typos: two edits, or one in five characters.
    static func closest(_ text: String, in candidates: [String]) -> String? {
        NameSuggestion.closest(to: text, among: candidates, maximumEdits: max(2, text.count / 5))
    }
}
