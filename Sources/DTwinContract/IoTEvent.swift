import Foundation

/// The cloud message contract (README: "The IoT event"): every device message becomes these parameters,
/// shaped like Twilio's Super SIM IP-command callback, so the seed's Lambda reads MQTT devices
/// and cellular ones alike.
public struct IoTEvent: Sendable, Equatable {
    /// The parameter names, in the order they are sent.
    public enum Name {
        public static let simUniqueName = "SimUniqueName"
        public static let payload = "Payload"
        public static let payloadType = "PayloadType"
        public static let direction = "Direction"
        public static let status = "Status"
        public static let messageID = "MessageId"
        public static let topic = "Topic"
        public static let receivedAt = "ReceivedAt"
        public static let source = "Source"
    }

    /// One query-string parameter: a form parameter, encoded by ``FormEncoding``.
    public typealias Parameter = FormParameter

    /// The parameters in their fixed order (the query string is built from this).
    public let parameters: [Parameter]

    public init(message: DeviceMessage) {
        parameters = [
            Parameter(name: Name.simUniqueName, value: message.device.rawValue),
            Parameter(name: Name.payload, value: Data(message.payload).base64EncodedString()),
            Parameter(name: Name.payloadType, value: "binary"),
            Parameter(name: Name.direction, value: "from_sim"),
            Parameter(name: Name.status, value: "received"),
            Parameter(name: Name.messageID, value: message.id.rawValue),
            Parameter(name: Name.topic, value: message.topic),
            Parameter(name: Name.receivedAt, value: Timestamp.iso8601(millis: message.receivedAtMillis)),
            Parameter(name: Name.source, value: message.source.rawValue),
        ]
    }

    public subscript(name: String) -> String? { parameters.first { $0.name == name }?.value }

    public var dictionary: [String: String] {
        Dictionary(parameters.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    /// `Name=value&…`, percent-encoded for a URL query or a form body.
    public var formEncoded: String { FormEncoding.encode(parameters) }

    /// The API Gateway REST (payload format 1.0) proxy event that API Gateway itself would build
    /// from a request carrying these parameters; this is what the `lambda` upstream sends.
    public func proxyEvent(httpMethod: String = "GET", path: String = APIGatewayProxyEvent.defaultPath)
        -> APIGatewayProxyEvent
    {
        let messageID = self[Name.messageID] ?? ""
        let millis = self[Name.receivedAt].flatMap(Timestamp.parseMillis) ?? 0
        let headers = ["Content-Type": "application/x-www-form-urlencoded", "User-Agent": "dtwin"]
        return APIGatewayProxyEvent(
            resource: path,
            path: path,
            httpMethod: httpMethod,
            headers: headers,
            multiValueHeaders: headers.mapValues { [$0] },
            queryStringParameters: dictionary,
            multiValueQueryStringParameters: dictionary.mapValues { [$0] },
            pathParameters: nil,
            stageVariables: nil,
            requestContext: .init(
                accountId: "dtwin",
                resourceId: "dtwin",
                stage: "dtwin",
                requestId: messageID,
                resourcePath: path,
                httpMethod: httpMethod,
                path: path,
                protocol: "HTTP/1.1",
                requestTimeEpoch: millis,
                apiId: "dtwin",
                identity: .init(sourceIp: "127.0.0.1", userAgent: "dtwin")
            ),
            body: nil,
            isBase64Encoded: false
        )
    }

    /// Reads the parameters back out of a proxy event, as the seed's Lambda does.
    /// `nil` when the event carries no device message (no `SimUniqueName` or no `Payload`).
    public init?(proxyEvent: APIGatewayProxyEvent) {
        guard let query = proxyEvent.queryStringParameters,
            query[Name.simUniqueName] != nil, query[Name.payload] != nil
        else { return nil }
        let order = [
            Name.simUniqueName, Name.payload, Name.payloadType, Name.direction, Name.status, Name.messageID,
            Name.topic, Name.receivedAt, Name.source,
        ]
        let known = order.compactMap { name in query[name].map { Parameter(name: name, value: $0) } }
        let extra = query.keys.filter { !order.contains($0) }.sorted().map { Parameter(name: $0, value: query[$0]!) }
        parameters = known + extra
    }
}
