import DTwinContract

/// `dtwin replay`: which recorded messages go out, when, and on which topic.
///
/// A recording holds more than devices said: the bridge's retained `online`, the commands it
/// sent to devices. Sent again, those would fake the bridge's status and command real devices
/// twice; so by default only device traffic (`up`, `status`, `sms`) goes out, without the
/// retain flag, and what was held back is counted for a warning.
public struct ReplayPlan: Sendable, Equatable {
    public enum Speed: Sendable, Equatable {
        /// Recorded gaps divided by this factor (1: as recorded).
        case factor(Double)
        /// No waiting at all.
        case max

        /// `2`, `0.5`, `max`.
        public init?(argument: String) {
            if argument == "max" {
                self = .max
            } else if let factor = Double(argument), factor > 0, factor.isFinite {
                self = .factor(factor)
            } else {
                return nil
            }
        }
    }

    public struct Step: Sendable, Equatable {
        /// Milliseconds after the start of the replay.
        public var offsetMillis: Int64
        public var observation: Observation
    }

    /// What a recorded topic is, judged by its last levels so any prefix works.
    public enum Role: String, Sendable, Equatable, CaseIterable {
        /// `<prefix>/<dev>/up`, `status`, `sms`: what devices send.
        case deviceTraffic
        /// `<prefix>/<dev>/down`, `<prefix>/<dev>/state/set`: a command or a desired state for
        /// a device.
        case command
        /// `<prefix>/bridge/…` (the bridge's status, dead letters, IP-command copies) and what
        /// the bridge publishes of each twin (`<prefix>/<dev>/state`, `state/rejected`).
        case bridge
        /// Anything else (another application's topics under a wider filter).
        case other
    }

    /// What goes out besides device traffic.
    public struct Options: Sendable, Equatable {
        /// Replay `<prefix>/<dev>/down` too (`--include-commands`).
        public var includeCommands = false
        /// Keep each message's retain flag (`--keep-retain`).
        public var keepRetain = false
        public init(includeCommands: Bool = false, keepRetain: Bool = false) {
            self.includeCommands = includeCommands
            self.keepRetain = keepRetain
        }
    }

    public let steps: [Step]
    /// Messages of one role that were not sent.
    public struct HeldBack: Sendable, Equatable {
        public var count: Int
        /// The first such topic, to name in the warning.
        public var example: String

        public init(count: Int, example: String) {
            self.count = count
            self.example = example
        }
    }

    /// Messages held back, by role.
    public let heldBack: [Role: HeldBack]
    /// Retained messages that go out without the flag.
    public let unretained: Int

    /// `prefix` moves every topic under another first level (`dtwin/uno1/up` →
    /// `lab/uno1/up`); `nil` keeps the topics. Gaps are counted from the first message sent.
    public init(_ recording: [Observation], speed: Speed, prefix: String? = nil, options: Options = Options()) {
        var heldBack: [Role: HeldBack] = [:]
        var kept: [Observation] = []
        for observation in recording {
            let role = Self.role(of: observation.topic)
            guard role == .deviceTraffic || (role == .command && options.includeCommands) else {
                heldBack[role, default: HeldBack(count: 0, example: observation.topic)].count += 1
                continue
            }
            kept.append(observation)
        }
        self.heldBack = heldBack
        unretained = options.keepRetain ? 0 : kept.filter(\.retain).count
        let start = kept.first?.atMillis ?? 0
        steps = kept.map { observation in
            var moved = observation
            if !options.keepRetain { moved.retain = false }
            if let prefix { moved.topic = Self.replacingFirstLevel(of: observation.topic, with: prefix) }
            let gap = max(0, observation.atMillis - start)
            let offset: Int64
            switch speed {
            case .max: offset = 0
            case .factor(let factor): offset = Int64((Double(gap) / factor).rounded())
            }
            return Step(offsetMillis: offset, observation: moved)
        }
    }

    public static func role(of topic: String) -> Role {
        let levels = topic.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard levels.count >= 3 else { return .other }
        let owner = levels[levels.count - 2]
        if levels.count >= 4, owner == "state", DeviceName(levels[levels.count - 3]) != nil {
            switch levels[levels.count - 1] {
            case "set": return .command
            case "rejected": return .bridge
            default: return .other
            }
        }
        if levels[levels.count - 1] == "state", DeviceName(owner) != nil { return .bridge }
        if owner == TopicTree.bridgeLevel || (levels.count >= 4 && levels[levels.count - 3] == TopicTree.bridgeLevel) {
            return .bridge
        }
        guard DeviceName(owner) != nil, let kind = TopicTree.Kind(rawValue: levels[levels.count - 1]) else { return .other }
        return kind == .down ? .command : .deviceTraffic
    }

    /// The warnings for what was held back or changed, one line each.
    public var warnings: [String] {
        var lines: [String] = []
        if let commands = heldBack[.command] {
            lines.append(
                "\(commands.count) command(s) to devices (\(commands.example), …) not replayed: --include-commands sends them to the devices again")
        }
        if let bridge = heldBack[.bridge] {
            lines.append("\(bridge.count) message(s) of the bridge's own (\(bridge.example), …) not replayed: replay never speaks for the bridge")
        }
        if let other = heldBack[.other] {
            lines.append("\(other.count) message(s) outside the device topics (\(other.example), …) not replayed")
        }
        if unretained > 0 {
            lines.append("\(unretained) retained message(s) replayed without the retain flag: --keep-retain keeps it")
        }
        return lines
    }

    static func replacingFirstLevel(of topic: String, with prefix: String) -> String {
        guard let slash = topic.firstIndex(of: "/") else { return prefix }
        return prefix + topic[slash...]
    }
}
