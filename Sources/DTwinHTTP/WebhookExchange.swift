import DTwinContract

/// An HTTP request as the webhook and API handlers see it, and their answer: plain values, so
/// the handlers are tested without a server and the Hummingbird glue stays a few lines.
public struct WebhookRequest: Sendable {
    /// The request target as received: path and query, percent-encoding untouched (Twilio
    /// signs the URL exactly as it called it).
    public var target: String
    /// The query's parameters in order, as the HTTP framework decoded them.
    public var query: [FormParameter]
    /// Header fields by lower-cased name.
    public var headers: [String: String]
    public var body: [UInt8]

    public init(target: String, query: [FormParameter] = [], headers: [String: String], body: [UInt8]) {
        self.target = target
        self.query = query
        self.headers = headers
        self.body = body
    }
}

public struct WebhookAnswer: Sendable, Equatable {
    public var status: Int
    public var contentType: String
    public var body: String
    public var headers: [String: String] = [:]

    public init(status: Int, contentType: String, body: String, headers: [String: String] = [:]) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    static func text(_ status: Int, _ body: String) -> WebhookAnswer {
        WebhookAnswer(status: status, contentType: "text/plain; charset=utf-8", body: body + "\n")
    }

    static func json(_ status: Int, _ body: String) -> WebhookAnswer {
        WebhookAnswer(status: status, contentType: "application/json", body: body)
    }
}
