import DTwinBridge
import DTwinStore
import Foundation

/// `GET /readyz`: 200 when the bridge can do its job — connected to the broker, the spool
/// taking messages, the twin table answering — else 503 with every reason.
public struct Readiness: Sendable {
    /// A store that has not answered by then counts as unreachable: a probe must not hang.
    static let storeDeadline = Duration.seconds(3)

    let health: any BridgeHealth
    let store: (any TwinStore)?

    public init(health: any BridgeHealth, store: (any TwinStore)?) {
        self.health = health
        self.store = store
    }

    struct Report: Encodable {
        var ready: Bool
        var problems: [String]
    }

    /// Every problem, in words; empty when ready.
    public func problems() async -> [String] {
        var problems = health.unreadiness
        if let store, let failure = await Self.check(store) { problems.append("the twin table does not answer: \(failure)") }
        return problems
    }

    func answer() async -> WebhookAnswer {
        let problems = await problems()
        return DeviceAPI.json(problems.isEmpty ? 200 : 503, Report(ready: problems.isEmpty, problems: problems))
    }

    /// `nil` when the store answered within the deadline.
    static func check(_ store: any TwinStore) async -> String? {
        do {
            try await withDeadline(storeDeadline) { try await store.check() }
            return nil
        } catch {
            return "\(error)"
        }
    }
}
