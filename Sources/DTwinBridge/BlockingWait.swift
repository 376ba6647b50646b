import DTwinContract
import Dispatch
import Synchronization

/// Runs async `work` and blocks the calling thread until it finishes or `timeout` passes: for
/// the MQTT network thread, which must hold a message's PUBACK until what it asks for is stored
/// (rule: acknowledged means stored). `work` runs on the cooperative pool, never on this thread,
/// and must not wait for anything this thread does (the broker's acknowledgements).
///
/// `false`: the time ran out; `work` goes on and finishes on its own.
func blockingWait(timeout: Duration, _ work: @escaping @Sendable () async -> Void) -> Bool {
    let done = DispatchSemaphore(value: 0)
    Task {
        await work()
        done.signal()
    }
    return done.wait(timeout: .now() + .nanoseconds(Int(timeout.nanoseconds))) == .success
}
