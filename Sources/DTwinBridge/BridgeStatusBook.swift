/// Who says the bridge is up. One bridge owns `<prefix>/bridge/status` (its birth `online`, its
/// last will `offline`). Several instances of a shared-subscription group each own
/// `<prefix>/bridge/status/<instance>` instead, and `<prefix>/bridge/status` says whether the
/// group runs: every running instance keeps it `online`, and only the last one to stop
/// gracefully says `offline`. One instance that dies therefore never makes the bridge look down.
/// (A last will is one message on one topic: when the last instance is killed, the group's
/// topic keeps `online`; its instance topic, a will, says `offline`. README: "Several instances".)
///
/// Pure: fed every status message the bridge sees, it says what to publish to put things right.
struct BridgeStatusBook: Sendable {
    /// This bridge's instance name; empty when it runs alone.
    let instance: String
    /// What each instance's topic said last (several only).
    private(set) var instances: [String: String] = [:]
    /// What `<prefix>/bridge/status` said last (several only), or what this bridge put there.
    private(set) var groupStatus: String?

    init(instance: String) { self.instance = instance }

    /// A status topic to set to `online` again, and why.
    enum Repair: Equatable, Sendable {
        /// This bridge's own topic (its birth) says something else: someone else's doing, or a
        /// last will left by an earlier run.
        case ownStatus
        /// The group's `<prefix>/bridge/status` is not `online` while this instance runs.
        case groupStatus
    }

    /// Notes `status` from `<prefix>/bridge/status` (`instance` nil) or from an instance's topic,
    /// and returns what to publish `online` on. A bridge that is stopping repairs nothing.
    mutating func note(_ status: String, instance name: String?, stopping: Bool) -> [Repair] {
        var repairs: [Repair] = []
        switch name {
        case nil where instance.isEmpty:
            if status != "online" { repairs.append(.ownStatus) }
        case nil:
            groupStatus = status
            if status != "online" { repairs.append(.groupStatus) }
        case let name?:
            instances[name] = status
            guard name == instance else { break }
            if status != "online" { repairs.append(.ownStatus) }
            // The group's topic may never have been written (the first start of a group).
            if groupStatus != "online" { repairs.append(.groupStatus) }
        }
        if stopping { return [] }
        if repairs.contains(.groupStatus) { groupStatus = "online" }
        return repairs
    }

    /// Whether this instance, stopping, is the last of its group that is online: then it says
    /// `offline` on the group's topic too.
    var isLastOnline: Bool {
        !instance.isEmpty && !instances.contains { $0.key != instance && $0.value == "online" }
    }
}
