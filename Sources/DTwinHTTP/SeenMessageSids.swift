import Synchronization

/// Twilio message SIDs the webhook has handled, so a retried webhook is never published twice.
///
/// A SID is *claimed* before its command is sent and *released* if sending fails (so the same
/// SMS may try again). Kept in memory, the newest `capacity` SIDs: Twilio retries within
/// seconds to minutes, well inside that window; a bridge restart forgets them.
final class SeenMessageSids: Sendable {
    struct State {
        var sids: Set<String> = []
        var order: [String] = []
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// `true` if `sid` was not seen before (it is now); `false` for a repeat.
    func claim(_ sid: String) -> Bool {
        state.withLock { state in
            guard state.sids.insert(sid).inserted else { return false }
            state.order.append(sid)
            if state.order.count > capacity {
                let dropped = state.order.count - capacity
                for old in state.order.prefix(dropped) { state.sids.remove(old) }
                state.order.removeFirst(dropped)
            }
            return true
        }
    }

    func release(_ sid: String) {
        state.withLock { state in
            if state.sids.remove(sid) != nil { state.order.removeAll { $0 == sid } }
        }
    }
}
