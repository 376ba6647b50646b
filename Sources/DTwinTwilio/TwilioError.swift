/// Why a Twilio API request failed, and whether trying again can help.
public struct TwilioError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Twilio answered with an error: its HTTP status, and its error code and message when
        /// the body had them (`{"code": 21211, "message": "...", "more_info": "..."}`).
        case api(status: Int, code: Int?, message: String)
        /// No answer: connection refused, reset, timed out, TLS failure.
        case transport(String)
        /// A 2xx answer that is not the JSON Twilio sends.
        case unexpectedAnswer(String)
    }

    public let kind: Kind

    public init(_ kind: Kind) {
        self.kind = kind
    }

    /// 429 and 5xx mean "later"; a lost connection may or may not have reached Twilio, and
    /// is retried (the budget already counts it). Other 4xx will fail the same way again.
    public var isRetryable: Bool {
        switch kind {
        case .api(let status, _, _): status == 429 || status >= 500
        case .transport: true
        case .unexpectedAnswer: false
        }
    }

    /// Twilio certainly did not send anything: the request was refused.
    public var certainlyNotSent: Bool {
        if case .api(let status, _, _) = kind { return (400..<500).contains(status) }
        return false
    }

    public var description: String {
        switch kind {
        case .api(let status, let code?, let message): "Twilio answered \(status), error \(code): \(message)"
        case .api(let status, nil, let message): "Twilio answered \(status): \(message)"
        case .transport(let reason): "Twilio could not be reached: \(reason)"
        case .unexpectedAnswer(let reason): "unexpected answer from Twilio: \(reason)"
        }
    }
}
