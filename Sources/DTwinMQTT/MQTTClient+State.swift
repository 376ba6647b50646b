import Synchronization

extension MQTTClient {
    struct Subscription: Sendable {
        var qos: MQTTQoS
        /// `nil` until the broker answers the current SUBSCRIBE.
        var granted: Bool?
    }

    typealias Condition = @Sendable (State) -> Result<Void, MQTTError>?

    struct ConditionWaiter: Sendable {
        let condition: Condition
        let continuation: CheckedContinuation<Void, any Error>
        let deadline: ContinuousClock.Instant
        let timeoutError: MQTTError
    }

    /// Everything shared between callers and the network thread, behind one `Mutex`.
    struct State: Sendable {
        var lifecycle = Lifecycle.created
        var lastError: MQTTError?
        var subscriptions: [String: Subscription] = [:]
        var subscribeRequests: [Int32: String] = [:]
        /// SUBACKs that arrived before their request id was recorded (see `sendSubscribe`).
        var earlySubacks: [Int32: Bool] = [:]
        var acknowledgements = PublishAcknowledgements<PublishWaiter>()
        /// The protocol of the next connection: ``MQTTClientConfiguration/protocolVersion``, or
        /// 3.1.1 once the broker refused 5.
        var protocolVersion: MQTTClientConfiguration.ProtocolVersion = .v5
        var conditionWaiters: [Int: ConditionWaiter] = [:]
        var nextWaiterID = 0
        var threadFinished = false
        /// Replaces ``MQTTClient/messages`` when set (``MQTTClient/handleMessages(with:)``).
        var messageHandler: MessageHandler?
        var threadExitWaiters: [CheckedContinuation<Void, Never>] = []

        /// Takes out the waiters whose condition now holds or failed.
        mutating func settledWaiters() -> [(CheckedContinuation<Void, any Error>, Result<Void, MQTTError>)] {
            var settled: [(CheckedContinuation<Void, any Error>, Result<Void, MQTTError>)] = []
            for (id, waiter) in conditionWaiters {
                if let result = waiter.condition(self) {
                    conditionWaiters.removeValue(forKey: id)
                    settled.append((waiter.continuation, result))
                }
            }
            return settled
        }
    }

    /// Runs `body` under the lock, then resumes every waiter it settled (outside the lock).
    func updateState<T: Sendable>(_ body: (inout State) -> T) -> T {
        let (result, settled) = state.withLock { state in
            let result = body(&state)
            return (result, state.settledWaiters())
        }
        for (continuation, outcome) in settled { continuation.resume(with: outcome.mapError { $0 }) }
        return result
    }

    /// Suspends until `condition` returns a result, the deadline passes, or the client closes.
    func waitFor(timeout: Duration, what: String, _ condition: @escaping Condition) async throws {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let immediate = state.withLock { state -> Result<Void, MQTTError>? in
                    if let result = condition(state) { return result }
                    if state.lifecycle.isStopping { return .failure(MQTTError(.closed, "the MQTT client is closed")) }
                    // Deadlines are enforced by the network thread: without it a wait would never end.
                    if !state.lifecycle.hasStarted { return .failure(MQTTError(.notConnected, "the MQTT client was not started")) }
                    let cause = state.lastError.map { " (last error: \($0.message))" } ?? ""
                    state.conditionWaiters[id] = ConditionWaiter(
                        condition: condition, continuation: continuation, deadline: .now + timeout,
                        timeoutError: MQTTError(.timeout, "timed out after \(timeout) waiting for \(what)\(cause)"))
                    return nil
                }
                if let immediate { continuation.resume(with: immediate.mapError { $0 }) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.conditionWaiters.removeValue(forKey: id) }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Calls `send` (which returns a libmosquitto message id) and waits for that id's PUBACK.
    /// A publish waiting for its PUBACK, with its topic for the error when the broker refuses it.
    struct PublishWaiter: Sendable {
        let continuation: CheckedContinuation<Void, any Error>
        let topic: String

        func settle(reasonCode: Int32) {
            if reasonCode >= 128 {
                continuation.resume(throwing: MQTTError.publishRefused(reasonCode, topic: topic))
            } else {
                continuation.resume()
            }
        }
    }

    func awaitAcknowledgement(topic: String, timeout: Duration, _ send: @escaping () throws(MQTTError) -> Int32) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let closed = state.withLock { state -> Bool in
                if state.lifecycle == .closed || !state.lifecycle.hasStarted { return true }
                state.acknowledgements.begin()
                return false
            }
            if closed {
                continuation.resume(throwing: MQTTError(.closed, "the MQTT client is not running"))
                return
            }
            let mid: Int32
            do {
                mid = try send()
            } catch {
                state.withLock { $0.acknowledgements.abandon() }
                continuation.resume(throwing: error)
                return
            }
            let waiter = PublishWaiter(continuation: continuation, topic: topic)
            let registration = state.withLock {
                $0.acknowledgements.register(mid, waiter, deadline: .now + timeout)
            }
            if case .alreadyAcknowledged(let reasonCode) = registration { waiter.settle(reasonCode: reasonCode) }
        }
    }

    /// Fails waiters whose deadline has passed; called by the network thread on every tick.
    func expireWaiters(now: ContinuousClock.Instant) {
        let (publishes, conditions) = state.withLock { state in
            let publishes = state.acknowledgements.expired(at: now)
            let late = state.conditionWaiters.filter { $0.value.deadline <= now }
            for id in late.keys { state.conditionWaiters.removeValue(forKey: id) }
            return (publishes, Array(late.values))
        }
        for waiter in publishes {
            waiter.continuation.resume(throwing: MQTTError(.timeout, "the broker did not acknowledge a publish in time"))
        }
        for waiter in conditions { waiter.continuation.resume(throwing: waiter.timeoutError) }
    }

    /// The end: no more messages, every waiter fails, `close()` returns.
    func finish() {
        continuation.finish()
        let (publishes, conditions, exits) = state.withLock { state in
            state.lifecycle = .closed
            let exits = state.threadExitWaiters
            state.threadExitWaiters = []
            let conditions = Array(state.conditionWaiters.values)
            state.conditionWaiters = [:]
            return (state.acknowledgements.removeAll(), conditions, exits)
        }
        let closed = MQTTError(.closed, "the MQTT client closed")
        for waiter in publishes { waiter.continuation.resume(throwing: closed) }
        for waiter in conditions { waiter.continuation.resume(throwing: closed) }
        for exit in exits { exit.resume() }
    }
}
