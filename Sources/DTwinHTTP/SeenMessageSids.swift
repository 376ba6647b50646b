import Synchronization

/// Twilio SIDs the webhooks have handled, in memory only: the ledger of a bridge without a spool
/// (`spool.enabled: false`), which forgets them on restart. With the spool, the SIDs are kept in
/// its file (``Spool/claimSid(_:atMillis:)``).
///
/// A SID is *claimed* before its command is sent and *released* if sending fails (so the same
/// SMS may try again). The newest `capacity` SIDs are kept: Twilio retries within seconds to
/// minutes, well inside that window.
public final class SeenMessageSids: WebhookSidLedger {
    struct State {
        var sids: Set<String> = []
        var order: [String] = []
    }

    let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// `true` if `sid` was not seen before (it is now); `false` for a repeat.
    public func claim(_ sid: String) -> Bool {
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

    public func release(_ sid: String) {
        state.withLock { state in
            if state.sids.remove(sid) != nil { state.order.removeAll { $0 == sid } }
        }
    }
}
