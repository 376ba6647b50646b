/// The messages an ``MQTTClient`` receives, in arrival order.
///
/// A single-consumer sequence: iterate it from one task. It finishes when the client is
/// closed, after every message received before the disconnect has been delivered; it never
/// throws (connection trouble shows as ``MQTTClient/isConnected`` and in the log).
public struct MQTTMessages: AsyncSequence, Sendable {
    public typealias Element = MQTTMessage

    let stream: AsyncStream<MQTTMessage>

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<MQTTMessage>.AsyncIterator
        public mutating func next() async -> MQTTMessage? { await base.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: stream.makeAsyncIterator()) }
}
