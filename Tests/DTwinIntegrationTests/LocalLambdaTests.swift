import DTwinContract
import DTwinStore
import DTwinTestSupport
import DTwinUpstream
import Foundation
import Logging
import Testing

/// `upstream.mode: local` delivers without building the API Gateway proxy event and its JSON
/// answer; what it decides must be what the seed's Lambda (``LocalLambda/handle(_:logger:)``)
/// answers for the same event, in every case.
@Suite struct LocalLambdaTests {
    static func event(_ n: Int, device: String = "uno1", dropping: String? = nil) -> IoTEvent {
        let event = IoTEvent(
            message: DeviceMessage(
                id: MessageID(rawValue: "m-\(n % 3)"), device: DeviceName(device)!, topic: "dtwin/\(device)/up",
                payload: Array("sim-\(device) data \(n)".utf8), receivedAtMillis: 1_764_000_000_000 + Int64(n)))
        guard let dropping else { return event }
        var proxy = event.proxyEvent()
        proxy.queryStringParameters?[dropping] = nil
        return IoTEvent(proxyEvent: proxy)!
    }

    @Test func deliveringDecidesWhatTheLambdasAnswerSays() async throws {
        let folder = try makeTemporaryFolder("dtwin-local")
        defer { try? FileManager.default.removeItem(at: folder) }
        let logger = Logger(label: "test")
        let replies = [DeviceName("uno2")!: "LIG"]
        // Two tables: one fed through the Lambda's own answer, one through the direct path.
        let viaLambda = LocalLambda(store: try SQLiteTwinStore(path: folder.appendingPathComponent("a.sqlite").path), replies: replies)
        let direct = LocalLambda(store: try SQLiteTwinStore(path: folder.appendingPathComponent("b.sqlite").path), replies: replies)
        // event(3) is m-0 again: a duplicate.
        let events = [
            Self.event(0), Self.event(1), Self.event(3), Self.event(4, device: "uno2"),
            Self.event(5, dropping: IoTEvent.Name.messageID), Self.event(6, dropping: IoTEvent.Name.receivedAt),
        ]
        var outcomes: [DeliveryOutcome] = []
        for event in events {
            let response = await viaLambda.handle(event.proxyEvent(), logger: logger)
            let expected = UpstreamAnswer.classify(status: response.statusCode, body: Array((response.body ?? "").utf8))
            let outcome = await direct.deliver(event, logger: logger)
            #expect(outcome == expected, "\(event.parameters)")
            outcomes.append(outcome)
        }
        // And the cases are what they should be.
        #expect(outcomes[0] == .delivered(reply: nil, note: nil))
        #expect(outcomes[3] == .delivered(reply: "LIG", note: nil))
        guard case .reject(let noID) = outcomes[4], case .reject(let noTime) = outcomes[5] else {
            Issue.record("events the Lambda cannot store are not rejected: \(outcomes)")
            return
        }
        #expect(noID.contains("no MessageId") && noTime.contains("ReceivedAt"), "\(noID) / \(noTime)")
    }

    /// The bridge hands local mode the message itself: the item stored is the one its event
    /// would give, whatever the payload (text, JSON with its own time, binary, empty), and so
    /// is the outcome.
    @Test func aMessageIsStoredAsItsEventWouldBe() async throws {
        let folder = try makeTemporaryFolder("dtwin-local")
        defer { try? FileManager.default.removeItem(at: folder) }
        let logger = Logger(label: "test")
        let payloads: [[UInt8]] = [
            Array("sim-uno1 data 512".utf8), Array("uno1:awake".utf8), Array(#"{"value": 3.5, "seq": 7, "ts": 1764000000123}"#.utf8),
            [0x00, 0xFF, 0xC3, 0x28], [], Array("télémétrie ☀︎".utf8),
        ]
        let messages = payloads.enumerated().map { n, payload in
            DeviceMessage(
                id: MessageID(rawValue: "m-\(n)"), device: DeviceName("uno1")!, topic: "dtwin/uno1/up", payload: payload,
                receivedAtMillis: 1_764_000_000_000 + Int64(n), source: n % 2 == 0 ? .mqtt : .twilioIPCommand)
        }
        for message in messages {
            #expect(TwinItem.from(message: message) == TwinItem.from(event: IoTEvent(message: message)), "\(message.payload)")
        }
        let viaEvent = LocalLambda(store: try SQLiteTwinStore(path: folder.appendingPathComponent("a.sqlite").path), replies: [:])
        let direct = LocalLambda(store: try SQLiteTwinStore(path: folder.appendingPathComponent("b.sqlite").path), replies: [:])
        for message in messages + messages {
            let expected = await viaEvent.deliver(IoTEvent(message: message), logger: logger)
            #expect(await direct.deliver(message: message, logger: logger) == expected)
        }
    }
}
