import DTwinContract

/// `dtwin replay`: when each recorded message goes out, and on which topic.
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

    public let steps: [Step]

    /// `prefix` moves every topic under another first level (`dtwin/uno1/up` →
    /// `lab/uno1/up`); `nil` keeps the topics.
    public init(_ recording: [Observation], speed: Speed, prefix: String? = nil) {
        let start = recording.first?.atMillis ?? 0
        steps = recording.map { observation in
            var moved = observation
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

    static func replacingFirstLevel(of topic: String, with prefix: String) -> String {
        guard let slash = topic.firstIndex(of: "/") else { return prefix }
        return prefix + topic[slash...]
    }
}
