/// The dtwin topic tree under a configurable prefix (README: "Topic tree").
///
/// ```
/// <prefix>/<dev>/up        device -> bridge   readings and events
/// <prefix>/<dev>/down      bridge -> device   commands
/// <prefix>/<dev>/status    device, retained   online / offline
/// <prefix>/<dev>/sms       device -> bridge   text to send by SMS
/// <prefix>/<dev>/state     bridge, retained   the twin document
/// <prefix>/<dev>/state/set people -> bridge   {"desired": {...}, "version": N}
/// <prefix>/<dev>/state/rejected  bridge       why a state/set was refused
/// <prefix>/bridge/status   bridge, retained   online / offline
/// <prefix>/bridge/status/<instance>  one of several bridges, retained: online / offline
/// <prefix>/bridge/deadletter                  messages that could not be delivered
/// ```
public struct TopicTree: Sendable, Equatable {
    public static let defaultPrefix = "dtwin"

    public let prefix: String

    /// Validates the prefix: one or more non-empty levels, no wildcards.
    public init(prefix: String = TopicTree.defaultPrefix) throws(InvalidTopicPrefix) {
        if prefix.isEmpty { throw InvalidTopicPrefix(prefix: prefix, reason: "is empty") }
        if prefix.contains("+") || prefix.contains("#") {
            throw InvalidTopicPrefix(prefix: prefix, reason: "contains an MQTT wildcard (+ or #)")
        }
        if prefix.split(separator: "/", omittingEmptySubsequences: false).contains(where: \.isEmpty) {
            throw InvalidTopicPrefix(prefix: prefix, reason: "has an empty level (a leading, trailing or double /)")
        }
        if prefix.utf8.contains(0) { throw InvalidTopicPrefix(prefix: prefix, reason: "contains a NUL byte") }
        self.prefix = prefix
    }

    /// The reserved second level: `<prefix>/bridge/...` belongs to the bridge, not to a device.
    public static let bridgeLevel = DeviceName.reserved

    public func up(_ device: DeviceName) -> String { "\(prefix)/\(device)/up" }
    public func down(_ device: DeviceName) -> String { "\(prefix)/\(device)/down" }
    public func status(_ device: DeviceName) -> String { "\(prefix)/\(device)/status" }
    public func sms(_ device: DeviceName) -> String { "\(prefix)/\(device)/sms" }
    /// The device's twin document, retained (README: "The twin").
    public func state(_ device: DeviceName) -> String { "\(prefix)/\(device)/state" }
    public func stateSet(_ device: DeviceName) -> String { "\(prefix)/\(device)/state/set" }
    public func stateRejected(_ device: DeviceName) -> String { "\(prefix)/\(device)/state/rejected" }
    public var bridgeStatus: String { "\(prefix)/\(Self.bridgeLevel)/status" }
    /// One bridge instance's own status, when several share the work (its last will).
    public func instanceStatus(_ instance: String) -> String { "\(bridgeStatus)/\(instance)" }
    public var deadLetter: String { "\(prefix)/\(Self.bridgeLevel)/deadletter" }
    /// Where the bridge shows a cellular device's message that arrived as a Super SIM IP command
    /// (`<prefix>/bridge/ipcommand/<dev>`): a copy for people watching the tree. The bridge took
    /// the message in directly; no subscription of its own matches this topic, so it can never
    /// come back in, and the broker's ACL lets the bridge write under `<prefix>/bridge/`.
    public func ipCommandCopy(_ device: DeviceName) -> String { "\(prefix)/\(Self.bridgeLevel)/ipcommand/\(device)" }

    /// Subscription filters the bridge needs: every device's `up`, `status` and `sms`, and the
    /// requests to change a twin.
    public var bridgeSubscriptions: [String] { bridgeSubscriptions(sharedGroup: "") }

    /// The filters of one bridge of the shared-subscription group `sharedGroup` (none: `""`).
    /// The work (`up`, `sms`, `state/set`) is shared: the broker gives each message to one member
    /// of the group. Statuses are not: every instance sees every device come and go (they are
    /// few), and the other instances' own statuses, which decide `<prefix>/bridge/status`.
    public func bridgeSubscriptions(sharedGroup: String) -> [String] {
        let statuses = "\(prefix)/+/status"
        let work = ["\(prefix)/+/up", "\(prefix)/+/sms", "\(prefix)/+/state/set"]
        guard !sharedGroup.isEmpty else { return [work[0], statuses] + work.dropFirst() }
        return work.map { "$share/\(sharedGroup)/\($0)" } + [statuses, instanceStatus("+")]
    }
    /// Everything under the prefix, for inspection.
    public var everything: String { "\(prefix)/#" }

    /// What a topic means in the tree.
    public enum Kind: String, Sendable, Equatable {
        case up, down, status, sms
    }

    /// A topic of a device's twin.
    public enum TwinTopic: String, Sendable, Equatable {
        /// `<dev>/state`: the document, retained, published by the bridge.
        case document
        /// `<dev>/state/set`: a request to change the desired state.
        case set
        /// `<dev>/state/rejected`: why a request was refused.
        case rejected
    }

    /// A topic that names a device.
    public struct DeviceTopic: Sendable, Equatable {
        public let device: DeviceName
        public let kind: Kind
    }

    /// What a topic is, or why it is not part of the tree.
    public enum Parsed: Sendable, Equatable {
        case device(DeviceTopic)
        case bridgeStatus
        /// `<prefix>/bridge/status/<instance>`: one of several bridges.
        case instanceStatus(String)
        case deadLetter
        /// The bridge's copy of a cellular device's IP-command message (``ipCommandCopy(_:)``).
        case ipCommandCopy(DeviceName)
        /// `<dev>/state`, `<dev>/state/set`, `<dev>/state/rejected`.
        case twin(DeviceName, TwinTopic)
        /// Not a dtwin topic: another prefix, another depth, another last level.
        case outsideTree(reason: String)
        /// Shaped like a device topic, but the device level is not a valid name.
        case invalidDevice(InvalidDeviceName, kind: Kind)
    }

    public func parse(_ topic: String) -> Parsed {
        let head = prefix + "/"
        // What ``parseByLevels(_:head:)`` decides for `<prefix>/<level>/up`, without splitting
        // the topic into an array of levels: every device message's topic is one of these.
        guard let level = Self.deviceLevelOfUp(topic, head: head) else { return parseByLevels(topic, head: head) }
        return Self.deviceTopic(level, kind: .up)
    }

    /// ``parse(_:)`` for any topic, level by level. `head`: the prefix and its `/`.
    func parseByLevels(_ topic: String, head: String) -> Parsed {
        guard topic.hasPrefix(head) else {
            return .outsideTree(reason: "topic does not start with \(head.debugDescription)")
        }
        // Levels split on the "/" byte (always a character boundary in UTF-8), not on
        // Characters.
        let rest = topic.dropFirst(head.count).utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map(Substring.init)
        if rest.count == 3, rest[0] == Self.bridgeLevel, rest[1] == "ipcommand", let device = DeviceName(String(rest[2])) {
            return .ipCommandCopy(device)
        }
        if rest.count == 3, rest[0] == Self.bridgeLevel, rest[1] == "status", let instance = DeviceName(String(rest[2])) {
            return .instanceStatus(instance.rawValue)
        }
        if let twinTopic = Self.twinTopic(rest) {
            do {
                return .twin(try DeviceName(validating: String(rest[0])), twinTopic)
            } catch {
                return .outsideTree(reason: "\(error)")
            }
        }
        guard rest.count == 2 else {
            return .outsideTree(reason: "expected \(prefix)/<device>/<up|down|status|sms|state>")
        }
        let level = String(rest[0])
        let last = String(rest[1])
        if level == Self.bridgeLevel {
            switch last {
            case "status": return .bridgeStatus
            case "deadletter": return .deadLetter
            default: break  // falls through to the device rules, which reject the reserved name
            }
        }
        guard let kind = Kind(rawValue: last) else {
            return .outsideTree(reason: "unknown last level \(last.debugDescription); expected up, down, status, sms or state")
        }
        return Self.deviceTopic(level, kind: kind)
    }

    /// `<level>` as a device's topic of `kind`, or why the level is not a device name.
    static func deviceTopic(_ level: String, kind: Kind) -> Parsed {
        do {
            return .device(DeviceTopic(device: try DeviceName(validating: level), kind: kind))
        } catch {
            return .invalidDevice(error, kind: kind)
        }
    }
}

extension TopicTree {
    /// `<level>` when `topic` is, byte for byte, `head` + `<level>/up` with `<level>` ASCII
    /// without `/`; `nil` for anything else, which ``parse(_:)`` reads level by level. (ASCII:
    /// then the topic's characters break where its bytes do, as `hasPrefix` needs.)
    static func deviceLevelOfUp(_ topic: String, head: String) -> String? {
        let bytes = topic.utf8
        let up = "/up".utf8
        guard bytes.count > head.utf8.count + up.count, bytes.starts(with: head.utf8) else { return nil }
        let start = bytes.index(bytes.startIndex, offsetBy: head.utf8.count)
        let end = bytes.index(bytes.endIndex, offsetBy: -up.count)
        guard bytes[end...].elementsEqual(up), bytes[start..<end].allSatisfy({ $0 < 0x80 && $0 != UInt8(ascii: "/") }) else {
            return nil
        }
        return String(topic[start..<end])
    }

    /// The twin topic that the levels after the prefix (`<dev>/state`, `<dev>/state/set`,
    /// `<dev>/state/rejected`) name, if any.
    static func twinTopic(_ levels: [Substring]) -> TwinTopic? {
        guard levels.count >= 2, levels[1] == "state" else { return nil }
        switch levels.count {
        case 2: return .document
        case 3 where levels[2] == "set": return .set
        case 3 where levels[2] == "rejected": return .rejected
        default: return nil
        }
    }
}

/// Why a topic prefix cannot be used.
public struct InvalidTopicPrefix: Error, Equatable, CustomStringConvertible {
    public let prefix: String
    public let reason: String
    public var description: String { "invalid topic prefix \(prefix.debugDescription): \(reason)" }
}
