import DTwinContract
import DTwinStore
import Foundation
import Logging

/// `upstream.mode: local` (the default) — an in-process stand-in for the seed's Lambda: it
/// reads the proxy event, stores the item in the twin table, and answers with a proxy response
/// whose body may carry a `reply` for the device.
public struct LocalLambda: Upstream {
    public let name = "local"

    let store: any TwinStore
    /// Per-device fixed replies (`devices.<dev>.reply`).
    let replies: [DeviceName: String]
    /// Called once per newly stored item (not for duplicates): alert rules run here.
    let onStored: @Sendable (TwinItem) -> Void

    public init(store: any TwinStore, replies: [DeviceName: String], onStored: @escaping @Sendable (TwinItem) -> Void = { _ in }) {
        self.store = store
        self.replies = replies
        self.onStored = onStored
    }

    /// What ``handle(_:logger:)`` does with `event.proxyEvent()`, without building the proxy
    /// event and its JSON answer only to read them back: the event round-trips losslessly
    /// (IoTEventTests), and a stored item's answer is read here directly. Anything else (400,
    /// 503) goes through the same answer the Lambda gives.
    public func deliver(_ event: IoTEvent, logger: Logger) async -> DeliveryOutcome {
        await outcome(of: process(event, logger: logger))
    }

    /// The same for a device message, without its event at all: the item the event would give
    /// (``TwinItem/from(message:)``, which LocalLambdaTests hold to it), without base64-encoding
    /// the payload and writing the time out only to read both back.
    public func deliver(message: DeviceMessage, logger: Logger) async -> DeliveryOutcome {
        await outcome(of: store(TwinItem.from(message: message), logger: logger))
    }

    private func outcome(of answer: (status: Int, fields: [String: String])) -> DeliveryOutcome {
        guard answer.status == 200 else {
            let response = Self.answer(answer.status, answer.fields)
            return UpstreamAnswer.classify(status: response.statusCode, body: Array((response.body ?? "").utf8))
        }
        return .delivered(reply: answer.fields["reply"], note: nil)
    }

    public func deliverTestEvent(_ event: ConsoleTestEvent, logger: Logger) async -> DeliveryOutcome {
        let response = handle(testEvent: event)
        return UpstreamAnswer.classify(status: response.statusCode, body: Array((response.body ?? "").utf8))
    }

    /// What the seed's Lambda does with an API Gateway proxy event.
    public func handle(_ proxyEvent: APIGatewayProxyEvent, logger: Logger) async -> APIGatewayProxyResponse {
        guard let event = IoTEvent(proxyEvent: proxyEvent) else {
            return Self.answer(400, ["error": "the event carries no SimUniqueName and Payload"])
        }
        let answer = await process(event, logger: logger)
        return Self.answer(answer.status, answer.fields)
    }

    /// The Lambda's work on one event: the item into the twin table, and the answer's status
    /// and body fields.
    func process(_ event: IoTEvent, logger: Logger) async -> (status: Int, fields: [String: String]) {
        await store(TwinItem.from(event: event), logger: logger)
    }

    func store(_ decoded: Result<TwinItem, TwinItemError>, logger: Logger) async -> (status: Int, fields: [String: String]) {
        let item: TwinItem
        switch decoded {
        case .success(let decoded): item = decoded
        case .failure(let error): return (400, ["error": error.reason])
        }
        let inserted: Bool
        do {
            inserted = try await store.put(item)
        } catch {
            // The store being unavailable is temporary as far as the device is concerned: retry.
            logger.error("twin table write failed", metadata: ["messageId": "\(item.messageId)", "error": "\(error)"])
            return (503, ["error": "the twin table is not available"])
        }
        if inserted { onStored(item) }
        var body: [String: String] = ["messageId": item.messageId, "stored": inserted ? "new" : "duplicate"]
        if let device = DeviceName(item.device), let reply = replies[device], !reply.isEmpty {
            body["reply"] = reply
        }
        return (200, body)
    }

    /// The console test event: accepted and answered 200, as the seed's Lambda does.
    public func handle(testEvent: ConsoleTestEvent) -> APIGatewayProxyResponse {
        Self.answer(200, ["message": "test event received", "testuser": testEvent.testuser, "testdata": testEvent.testdata])
    }

    static func answer(_ status: Int, _ fields: [String: String]) -> APIGatewayProxyResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let body = (try? encoder.encode(fields)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return APIGatewayProxyResponse(statusCode: status, body: body)
    }
}
