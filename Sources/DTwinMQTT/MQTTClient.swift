import CMosquitto
import Foundation
import Logging
import Synchronization

/// An MQTT client over libmosquitto.
///
/// - One dedicated network thread runs libmosquitto's loop, so blocking C calls (connect, DNS,
///   TLS handshakes, `select`) never run on Swift's cooperative thread pool.
/// - It connects, and reconnects with exponential backoff, until ``close()``; every connect
///   re-subscribes to the filters added so far and publishes the birth message.
/// - Received messages are the ``messages`` sequence (one consumer).
///
/// Delivery semantics, stated plainly: libmosquitto queues the PUBACK of an incoming QoS 1
/// message *before* it hands the message to us, and writes it as soon as the callback returns,
/// so a message in ``messages`` that the process has not yet made durable is lost if the
/// process dies. Callers that promise more persist inside ``handleMessages(with:)``.
public final class MQTTClient: Sendable {
    public let configuration: MQTTClientConfiguration
    /// Everything received, in order. Finishes after ``close()``, once every message received
    /// before the disconnect has been yielded.
    public let messages: MQTTMessages

    let handle: MosquittoHandle
    let state: Mutex<State>
    /// Wakes the network thread's `poll` when another thread queues a packet.
    let wakeup: WakeupPipe
    let logger: Logger
    let continuation: AsyncStream<MQTTMessage>.Continuation

    /// Creates a client; nothing touches the network until ``start()``.
    public init(configuration: MQTTClientConfiguration, logger: Logger) throws(MQTTError) {
        _ = mosquittoLibraryInitialized
        self.configuration = configuration
        self.logger = logger
        let (stream, continuation) = AsyncStream<MQTTMessage>.makeStream(bufferingPolicy: .unbounded)
        self.messages = MQTTMessages(stream: stream)
        self.continuation = continuation
        var initial = State()
        initial.protocolVersion = configuration.protocolVersion
        self.state = Mutex(initial)
        // The client id must stay fixed for a persistent session to mean anything.
        guard let pointer = mosquitto_new(configuration.clientID, configuration.cleanSession, nil) else {
            throw MQTTError(.invalidArgument, "could not create an MQTT client (client id \(configuration.clientID.debugDescription))")
        }
        self.handle = MosquittoHandle(pointer: pointer)
        do {
            self.wakeup = try WakeupPipe()
        } catch {
            mosquitto_destroy(pointer)
            throw error
        }
        try configure()
    }

    deinit {
        // The network thread holds a strong reference until it ends, so by now it has: a client
        // is released either never started or closed, as NIO's channels are.
        let lifecycle = state.withLock { $0.lifecycle }
        assert(lifecycle == .created || lifecycle == .closed, "MQTTClient released while \(lifecycle): call close() first")
        mosquitto_destroy(handle.pointer)
    }

    /// Runs on the network thread for each received message, before libmosquitto writes its
    /// acknowledgement.
    public typealias MessageHandler = @Sendable (MQTTMessage) -> Void

    /// Hands every received message to `handler` on the network thread, instead of to
    /// ``messages``. Call it before ``start()``.
    ///
    /// Why: in threaded mode libmosquitto only *queues* a QoS 1 PUBACK while it handles an
    /// incoming PUBLISH; its loop writes the PUBACK after the message callback returns. A
    /// handler that returns only once the message is on disk therefore turns "acknowledged to
    /// the broker" into "durable here" (a process killed inside the handler never acknowledged
    /// the message, and the broker sends it again). The handler may block: this thread is the
    /// client's own, not Swift's cooperative pool. While it blocks, nothing else is read.
    public func handleMessages(with handler: @escaping MessageHandler) {
        state.withLock { $0.messageHandler = handler }
    }

    /// Starts the network thread: connect, and keep connected until ``close()``.
    public func start() {
        guard state.withLock({ $0.lifecycle.start() }) else { return }
        let thread = Thread { [self] in runNetworkLoop() }
        thread.name = "mqtt-\(configuration.clientID)"
        thread.start()
    }

    /// `true` between a successful CONNACK and the next disconnect.
    public var isConnected: Bool { state.withLock { $0.lifecycle.isConnected } }

    /// The most recent connection failure, for readiness checks and error messages.
    public var lastError: MQTTError? { state.withLock { $0.lastError } }

    // MARK: subscriptions

    /// Remembers `filter` and subscribes now if connected; it is renewed on every reconnect.
    public func addSubscription(_ filter: String, qos: MQTTQoS = .atLeastOnce) {
        let connected = state.withLock { state -> Bool in
            state.subscriptions[filter] = Subscription(qos: qos, granted: nil)
            return state.lifecycle.isConnected
        }
        if connected { sendSubscribe(filter, qos: qos) }
    }

    /// Subscribes and waits until the broker has granted every filter (SUBACK).
    /// Throws ``MQTTError/Code/subscriptionRefused`` when the broker refuses one, and
    /// ``MQTTError/Code/timeout`` when no SUBACK comes in time.
    public func subscribe(_ filters: [String], qos: MQTTQoS = .atLeastOnce, timeout: Duration = .seconds(10)) async throws {
        for filter in filters { addSubscription(filter, qos: qos) }
        try await waitFor(timeout: timeout, what: "the broker to grant \(filters)") { state in
            for filter in filters {
                switch state.subscriptions[filter]?.granted {
                case .some(false):
                    return .failure(
                        MQTTError(.subscriptionRefused, "the broker refused the subscription to \(filter.debugDescription) (check the ACL)"))
                case .some(true): continue
                case .none: return nil
                }
            }
            return .success(())
        }
    }

    // MARK: publishing

    /// Publishes a message. For QoS 1 it returns once the broker has acknowledged it (PUBACK);
    /// for QoS 0 once libmosquitto has accepted it.
    ///
    /// A QoS 1 message published while disconnected is kept by libmosquitto and sent after the
    /// reconnect; `timeout` bounds the wait, not the delivery (a timed-out message may still arrive).
    public func publish(
        topic: String, payload: some Collection<UInt8>, qos: MQTTQoS = .atLeastOnce, retain: Bool = false,
        timeout: Duration = .seconds(30)
    ) async throws {
        let bytes = Array(payload)
        if qos == .atMostOnce {
            _ = try publishNow(topic: topic, payload: bytes, qos: qos, retain: retain)
            return
        }
        try await awaitAcknowledgement(topic: topic, timeout: timeout) { () throws(MQTTError) -> Int32 in
            try self.publishNow(topic: topic, payload: bytes, qos: qos, retain: retain)
        }
    }

    /// Publishes without waiting for anything: for best-effort traffic on hot paths.
    public func publishWithoutWaiting(topic: String, payload: some Collection<UInt8>, qos: MQTTQoS, retain: Bool = false) throws {
        _ = try publishNow(topic: topic, payload: Array(payload), qos: qos, retain: retain)
    }

    // MARK: connection

    /// Waits until connected. With `failFast`, the first connection failure is thrown at once
    /// (command-line tools); without it, failures are retried until `timeout` (services).
    public func waitUntilConnected(timeout: Duration, failFast: Bool = false) async throws {
        try await waitFor(timeout: timeout, what: "a connection to \(configuration.endpointDescription)") { state in
            if state.lifecycle.isConnected { return .success(()) }
            if failFast, let error = state.lastError { return .failure(error) }
            return nil
        }
    }

    /// Sends DISCONNECT (so the broker does not publish the last will), stops the network
    /// thread and finishes ``messages``. Idempotent. Unacknowledged publishes fail with `.closed`.
    public func close() async {
        let (connected, started) = state.withLock { $0.lifecycle.stop(deadline: .now + .seconds(2)) }
        if connected {
            mosquitto_disconnect(handle.pointer)
            wakeup.wake()
        }
        if started {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                let finished = state.withLock { state -> Bool in
                    if state.lifecycle == .closed { return true }
                    state.threadExitWaiters.append(done)
                    return false
                }
                if finished { done.resume() }
            }
        } else {
            finish()
        }
    }
}

/// The `struct mosquitto *`, shareable across threads: libmosquitto in threaded mode
/// (`mosquitto_threaded_set`) guards its own state with mutexes, publish and subscribe are
/// documented as callable from any thread, and the pointer is freed only in `MQTTClient.deinit`.
struct MosquittoHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// `mosquitto_lib_init` must run once per process before any client exists.
let mosquittoLibraryInitialized: Void = { mosquitto_lib_init() }()
