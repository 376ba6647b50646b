import DTwinApp
import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinMQTT
import DTwinTestSupport
import Foundation
import Testing

/// Commands and replies for devices wait in the spool until the broker acknowledges them: one
/// accepted while the broker is down is published once it is back.
@Suite struct DurableCommandTests {
    /// A device that listens on its `down` topic with a persistent session, as the firmware does.
    static func device(_ name: String, broker: MosquittoProcess) async throws -> MessageCollector {
        try await MessageCollector(port: broker.port, filters: ["dtwin/\(name)/down"], clientID: "device-\(name)", cleanSession: false)
    }

    static func received(_ device: MessageCollector, _ command: String) -> Bool {
        device.messages.contains { $0.payload == Array(command.utf8) }
    }

    @Test func anSMSCommandGivenWhileTheBrokerIsDownIsPublishedWhenItIsBack() async throws {
        let harness = try await TwilioHarness()
        let broker = harness.bridge.broker
        let bridge = harness.bridge.application.bridge
        let device = try await Self.device("a", broker: broker)
        broker.stop()
        #expect(await waitUntil { !bridge.brokerConnected })
        let ready = try await harness.get("/readyz", bearer: nil)
        #expect(ready.status == 503 && ready.body.contains("not connected to the broker"), "\(ready)")
        let answer = try await harness.sms("@a LIG")
        #expect(answer.status == 200)
        // Stored, not yet sent: the person is told so.
        #expect(TwilioHarness.message(in: answer.body) == "Queued for a: it is sent as soon as the broker is back.")
        #expect(bridge.publishQueue.count == 1)
        try broker.start()
        #expect(await device.waitFor(timeout: .seconds(20)) { _ in Self.received(device, "LIG") })
        #expect(await waitUntil { bridge.publishQueue.count == 0 })
        #expect(try await harness.get("/readyz", bearer: nil).status == 200)
        // With the broker there, a command is reported sent.
        let sent = try await harness.sms("@a ACK")
        #expect(TwilioHarness.message(in: sent.body) == "Sent to a: ACK")
        #expect(await device.waitFor { $0.map(\.payload) == [Array("LIG".utf8), Array("ACK".utf8)] })
        await device.close()
        await harness.stop()
    }

    @Test func aReplyThatArrivesWhileTheBrokerIsDownIsPublishedWhenItIsBack() async throws {
        // The upstream answers after a second: time to take the broker away in between.
        let gateway = try await HTTPReceiver.start { _ in .init(body: #"{"reply":"LIG"}"#, delay: .seconds(1)) }
        let harness = try await BridgeHarness {
            $0.upstream.mode = .apigw
            $0.upstream.url = gateway.url
        }
        let bridge = harness.application.bridge
        let device = try await Self.device("uno1", broker: harness.broker)
        try await harness.publish("dtwin/uno1/up", "sim-uno1 data 7")
        #expect(await gateway.waitForRequests(1))
        harness.broker.stop()
        // The reading has left the spool; its reply waits in it.
        #expect(await waitUntil { bridge.publishQueue.count == 1 && bridge.spoolDepth == 0 })
        try harness.broker.start()
        #expect(await device.waitFor(timeout: .seconds(20)) { _ in Self.received(device, "LIG") })
        #expect(await waitUntil { bridge.publishQueue.count == 0 })
        await device.close()
        await harness.stop()
        await gateway.stop()
    }

    @Test func commandsToADeviceArePublishedInTheOrderGivenAcrossAnOutage() async throws {
        let harness = try await BridgeHarness()
        let broker = harness.broker
        let device = try await Self.device("b", broker: broker)
        broker.stop()
        // As replies (not waited for): a person's command waits up to 3 s to say "sent".
        let commands = (1...30).map { "C\($0)" }
        for command in commands {
            try await harness.application.bridge.dispatcher.send(command, to: DeviceName("b")!, from: .upstreamReply)
        }
        #expect(harness.application.bridge.publishQueue.count == commands.count)
        try broker.start()
        #expect(await device.waitFor(timeout: .seconds(20)) { $0.count >= commands.count })
        #expect(device.messages.map { String(decoding: $0.payload, as: UTF8.self) } == commands)
        await device.close()
        await harness.stop()
    }
}
