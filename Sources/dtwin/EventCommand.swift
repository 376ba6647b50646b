import ArgumentParser
import DTwinContract
import Foundation

struct EventCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "event",
        abstract: "Print the IoT event the bridge would send upstream for a device message.",
        discussion: """
            Example: dtwin event uno1 'sim-uno1 data 512'

            Prints the API Gateway (REST, format 1.0) proxy event that the lambda upstream sends, or \
            with --format query the query string that the apigw upstream sends. Use --test for the \
            Lambda console's test event. --message-id and --received-at fix what the bridge would \
            choose, so the same event can be made again (to replay a stored item, or in tests).
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case event, query
    }

    @Argument(help: "The device name.")
    var device: String?

    @Argument(help: "The payload as text (use --base64 for binary payloads).")
    var payload: String?

    @Flag(help: "PAYLOAD is base64 of the raw bytes.")
    var base64 = false

    @Flag(help: "Print the console test event {\"testuser\": \"kilroy\", …} instead.")
    var test = false

    @Option(help: "event (the proxy event JSON) or query (the apigw query string).")
    var format: Format = .event

    @Option(help: "The prefix of the topic in the event.")
    var topicPrefix: String = TopicTree.defaultPrefix

    @Option(help: "The event's MessageId (default: a new one, as the bridge makes).")
    var messageId: String?

    @Option(help: "The event's ReceivedAt: ISO-8601 or Unix milliseconds (default: now).")
    var receivedAt: String?

    func run() async throws {
        try await reportingFailures {
            if test {
                let parameters = ConsoleTestEvent.seed.parameters
                print(format == .query ? FormEncoding.encode(parameters) : Self.json(ConsoleTestEvent.seed))
                return
            }
            guard let device, let payload else { throw CommandFailure.usage("give DEV and PAYLOAD (or --test)") }
            let name = try validDeviceName(device)
            let tree: TopicTree
            do { tree = try TopicTree(prefix: topicPrefix) } catch { throw CommandFailure.usage("\(error)") }
            let bytes: [UInt8]
            if base64 {
                guard let data = Data(base64Encoded: payload) else { throw CommandFailure.usage("PAYLOAD is not valid base64") }
                bytes = Array(data)
            } else {
                bytes = Array(payload.utf8)
            }
            var received = Timestamp.nowMillis()
            if let receivedAt {
                guard let millis = Timestamp.parseMillis(receivedAt) else {
                    throw CommandFailure.usage("--received-at \(receivedAt.debugDescription) is not ISO-8601 or Unix milliseconds")
                }
                received = millis
            }
            if let messageId, messageId.isEmpty || messageId.count > 128 {
                throw CommandFailure.usage("--message-id must be 1 to 128 characters")
            }
            var generator = SystemRandomNumberGenerator()
            let message = DeviceMessage(
                id: messageId.map(MessageID.init(rawValue:)) ?? MessageID(millis: received, using: &generator), device: name,
                topic: tree.up(name), payload: bytes, receivedAtMillis: received)
            let event = IoTEvent(message: message)
            print(format == .query ? event.formEncoded : Self.json(event.proxyEvent()))
        }
    }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
